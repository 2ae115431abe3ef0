// Elman RNN (tanh and relu) forward and backward on the GPU, float32 and float64.
#include "device_exec.cuh"
#include "kernels.h"
#include "recurrent.h"
#include "rnn_cell.h"

namespace pyrnn {
namespace cuda {

template <typename T>
void rnn_forward(bool relu, const ForwardArgs<T>& a) {
  DeviceExec ex;
  if (relu)
    recurrent_forward<DeviceExec, T, RnnCell<T, true>>(ex, a);
  else
    recurrent_forward<DeviceExec, T, RnnCell<T, false>>(ex, a);
}

template <typename T>
void rnn_backward(bool relu, const BackwardArgs<T>& a) {
  DeviceExec ex;
  if (relu)
    recurrent_backward<DeviceExec, T, RnnCell<T, true>>(ex, a);
  else
    recurrent_backward<DeviceExec, T, RnnCell<T, false>>(ex, a);
}

template void rnn_forward<float>(bool, const ForwardArgs<float>&);
template void rnn_forward<double>(bool, const ForwardArgs<double>&);
template void rnn_backward<float>(bool, const BackwardArgs<float>&);
template void rnn_backward<double>(bool, const BackwardArgs<double>&);

}  // namespace cuda
}  // namespace pyrnn
