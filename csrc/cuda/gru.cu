// GRU forward and backward on the GPU, float32 and float64.
#include "device_exec.cuh"
#include "gru_cell.h"
#include "kernels.h"
#include "recurrent.h"

namespace pyrnn {
namespace cuda {

template <typename T>
void gru_forward(const ForwardArgs<T>& a) {
  DeviceExec ex;
  recurrent_forward<DeviceExec, T, GruCell<T>>(ex, a);
}

template <typename T>
void gru_backward(const BackwardArgs<T>& a) {
  DeviceExec ex;
  recurrent_backward<DeviceExec, T, GruCell<T>>(ex, a);
}

template void gru_forward<float>(const ForwardArgs<float>&);
template void gru_forward<double>(const ForwardArgs<double>&);
template void gru_backward<float>(const BackwardArgs<float>&);
template void gru_backward<double>(const BackwardArgs<double>&);

}  // namespace cuda
}  // namespace pyrnn
