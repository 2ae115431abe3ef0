// Scalar math shared by the CUDA cells. Compiles as CUDA (host + device) and as plain C++, so the
// host emulation test (tests/cuda_host_emulation.cpp) runs the very same cell code on the CPU.
#pragma once

#include <math.h>

#include "pyrnn/common.h"

#ifdef __CUDACC__
#define PYRNN_HD __host__ __device__ __forceinline__
#else
#define PYRNN_HD inline
#endif

namespace pyrnn {
namespace cuda {

PYRNN_HD float sigmoid(float v) { return 1.0f / (1.0f + ::expf(-v)); }
PYRNN_HD double sigmoid(double v) { return 1.0 / (1.0 + ::exp(-v)); }
PYRNN_HD float act_tanh(float v) { return ::tanhf(v); }
PYRNN_HD double act_tanh(double v) { return ::tanh(v); }

// Pre-activation of gate q of one unit, summed as the CPU kernels do:
// (h W_hh^T) + ((x W_ih^T) + (b_ih + b_hh)). Pointers are offset to the unit; gate q at q*H.
template <typename T>
PYRNN_HD T preactivation(const T* px, const T* gh, const T* b_ih, const T* b_hh, index_t H,
                         int q) {
  const T bias = b_ih ? b_ih[q * H] + b_hh[q * H] : T(0);
  return gh[q * H] + (px[q * H] + bias);
}

}  // namespace cuda
}  // namespace pyrnn
