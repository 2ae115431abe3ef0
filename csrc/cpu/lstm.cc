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

template void lstm_forward<float>(const ForwardArgs<float>&);
template void lstm_forward<double>(const ForwardArgs<double>&);
template void lstm_backward<float>(const BackwardArgs<float>&);
template void lstm_backward<double>(const BackwardArgs<double>&);

}  // namespace PYRNN_ISA_NS
}  // namespace pyrnn
