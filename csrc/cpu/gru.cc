#include "pyrnn/kernels.h"
#include "pyrnn/gru.h"
#include "pyrnn/recurrent.h"

namespace pyrnn {
namespace PYRNN_ISA_NS {

template <typename T>
void gru_forward(const ForwardArgs<T>& a) {
  recurrent_forward<T, GruCell<T>>(a);
}

template <typename T>
void gru_backward(const BackwardArgs<T>& a) {
  recurrent_backward<T, GruCell<T>>(a);
}

template <typename T>
void gru_reset_before_forward(const ForwardArgs<T>& a) {
  recurrent_forward<T, GruResetBeforeCell<T>>(a);
}

template <typename T>
void gru_reset_before_backward(const BackwardArgs<T>& a) {
  recurrent_backward<T, GruResetBeforeCell<T>>(a);
}

template void gru_reset_before_forward<float>(const ForwardArgs<float>&);
template void gru_reset_before_forward<double>(const ForwardArgs<double>&);
template void gru_reset_before_backward<float>(const BackwardArgs<float>&);
template void gru_reset_before_backward<double>(const BackwardArgs<double>&);
template void gru_forward<float>(const ForwardArgs<float>&);
template void gru_forward<double>(const ForwardArgs<double>&);
template void gru_backward<float>(const BackwardArgs<float>&);
template void gru_backward<double>(const BackwardArgs<double>&);

}  // namespace PYRNN_ISA_NS
}  // namespace pyrnn
