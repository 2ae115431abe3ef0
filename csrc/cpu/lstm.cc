#include "pyrnn/kernels.h"
#include "pyrnn/lstm.h"
#include "pyrnn/recurrent.h"

namespace pyrnn {
namespace PYRNN_ISA_NS {

template <typename T>
void lstm_forward(const ForwardArgs<T>& a) {
  recurrent_forward<T, LstmCell<T>>(a);
}

template <typename T>
void lstm_backward(const BackwardArgs<T>& a) {
  recurrent_backward<T, LstmCell<T>>(a);
}

// The variants (CellKind::LSTM_COUPLED, LSTM_PEEPHOLE).
template <typename T>
void lstm_variant_forward(CellKind k, const ForwardArgs<T>& a) {
  if (k == CellKind::LSTM_COUPLED)
    recurrent_forward<T, CoupledLstmCell<T>>(a);
  else
    recurrent_forward<T, PeepholeLstmCell<T>>(a);
}

template <typename T>
void lstm_variant_backward(CellKind k, const BackwardArgs<T>& a) {
  if (k == CellKind::LSTM_COUPLED)
    recurrent_backward<T, CoupledLstmCell<T>>(a);
  else
    recurrent_backward<T, PeepholeLstmCell<T>>(a);
}

template void lstm_variant_forward<float>(CellKind, const ForwardArgs<float>&);
template void lstm_variant_forward<double>(CellKind, const ForwardArgs<double>&);
template void lstm_variant_backward<float>(CellKind, const BackwardArgs<float>&);
template void lstm_variant_backward<double>(CellKind, const BackwardArgs<double>&);
template void lstm_forward<float>(const ForwardArgs<float>&);
template void lstm_forward<double>(const ForwardArgs<double>&);
template void lstm_backward<float>(const BackwardArgs<float>&);
template void lstm_backward<double>(const BackwardArgs<double>&);

}  // namespace PYRNN_ISA_NS
}  // namespace pyrnn
