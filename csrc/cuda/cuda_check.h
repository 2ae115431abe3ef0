// Every CUDA runtime call is checked; a failure becomes a std::runtime_error naming the call,
// file:line and CUDA's error name and string.
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace pyrnn {
namespace cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t e, const char* call, const char* file,
                                          int line) {
  throw std::runtime_error(std::string("CUDA error: ") + call + " failed at " + file + ":" +
                           std::to_string(line) + ": " + cudaGetErrorName(e) + ": " +
                           cudaGetErrorString(e));
}

}  // namespace cuda
}  // namespace pyrnn

#define PYRNN_CUDA_CHECK(call)                                                   \
  do {                                                                           \
    const cudaError_t pyrnn_err_ = (call);                                       \
    if (pyrnn_err_ != cudaSuccess)                                               \
      ::pyrnn::cuda::throw_cuda_error(pyrnn_err_, #call, __FILE__, __LINE__);    \
  } while (0)

// After a kernel launch: a bad launch configuration is reported here; errors raised while the
// kernel runs surface at the next checked synchronising call (DeviceExec::finish).
#define PYRNN_CUDA_CHECK_LAUNCH(kernel_name)                                     \
  do {                                                                           \
    const cudaError_t pyrnn_err_ = cudaGetLastError();                           \
    if (pyrnn_err_ != cudaSuccess)                                               \
      ::pyrnn::cuda::throw_cuda_error(pyrnn_err_, "launch of " kernel_name,      \
                                      __FILE__, __LINE__);                       \
  } while (0)
