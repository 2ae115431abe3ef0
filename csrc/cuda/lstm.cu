// LSTM forward and backward on the GPU, float32 and float64.
#include "device_exec.cuh"
#include "lstm_cell.h"
#include "kernels.h"
#include "recurrent.h"

namespace pyrnn {
namespace cuda {

template <typename T>
void lstm_forward(const ForwardArgs<T>& a) {
  DeviceExec ex;
  recurrent_forward<DeviceExec, T, LstmCell<T>>(ex, a);
}

template <typename T>
void lstm_backward(const BackwardArgs<T>& a) {
  DeviceExec ex;
  recurrent_backward<DeviceExec, T, LstmCell<T>>(ex, a);
}

template void lstm_forward<float>(const ForwardArgs<float>&);
template void lstm_forward<double>(const ForwardArgs<double>&);
template void lstm_backward<float>(const BackwardArgs<float>&);
template void lstm_backward<double>(const BackwardArgs<double>&);

}  // namespace cuda
}  // namespace pyrnn
