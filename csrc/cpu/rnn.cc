#include "pyrnn/kernels.h"
#include "pyrnn/recurrent.h"
#include "pyrnn/rnn.h"

namespace pyrnn {
namespace PYRNN_ISA_NS {

template <typename T>
void rnn_forward(bool relu, const ForwardArgs<T>& a) {
  if (relu)
    recurrent_forward<T, RnnCell<T, true>>(a);
  else
    recurrent_forward<T, RnnCell<T, false>>(a);
}

template <typename T>
void rnn_backward(bool relu, const BackwardArgs<T>& a) {
  if (relu)
    recurrent_backward<T, RnnCell<T, true>>(a);
  else
    recurrent_backward<T, RnnCell<T, false>>(a);
}

template void rnn_forward<float>(bool, const ForwardArgs<float>&);
template void rnn_forward<double>(bool, const ForwardArgs<double>&);
template void rnn_backward<float>(bool, const BackwardArgs<float>&);
template void rnn_backward<double>(bool, const BackwardArgs<double>&);

}  // namespace PYRNN_ISA_NS
}  // namespace pyrnn
