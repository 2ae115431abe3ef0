// The interface of the optional CUDA kernel library, libpyrnn_kernels_cuda, which the Python
// module loads at run time with dlopen (csrc/bindings/register_cuda.cpp): one C entry point,
// pyrnn_cuda_kernel_table(), returns a table of functions. Plain C++ without CUDA headers, so the
// binding builds with the host compiler alone, and a pyrnn built with CUDA still imports where the
// CUDA libraries are missing (pyrnn.cuda.is_available() then says why).
//
// forward/backward take the CPU kernels' ForwardArgs/BackwardArgs (pyrnn/common.h) with every
// pointer a *device* pointer (lengths included; num_threads is ignored): the same shapes, step
// order and saved-activation layout as the CPU kernels, so saves and results are interchangeable.
// Failures are thrown as std::runtime_error naming the failing call, file:line and the CUDA or
// cuBLAS error string (pybind11 turns them into RuntimeError).
#pragma once

#include <cstddef>

#include "pyrnn/common.h"

namespace pyrnn {
namespace cuda {

constexpr int kApiVersion = 1;

struct DeviceInfo {
  int device_count;          // devices the CUDA runtime sees (0 when none or no driver)
  int device;                // the calling thread's current device, -1 when none is usable
  char name[256];            // its name, "" when none
  int cc_major, cc_minor;    // its compute capability
  std::size_t total_memory;  // its memory in bytes
  int runtime_version;       // cudaRuntimeGetVersion, e.g. 13000
  int driver_version;        // cudaDriverGetVersion, 0 when no driver is installed
  char error[512];           // why no device is usable; "" when one is
};

struct CudaTable {
  int api_version;            // kApiVersion of the library
  const char* architectures;  // compiled GPU architectures, e.g. "80,90" (__CUDA_ARCH_LIST__)
  void (*device_info)(DeviceInfo* out) noexcept;
  void* (*malloc)(std::size_t bytes);  // cudaMalloc; nullptr for 0 bytes; throws on failure
  void (*free)(void* p) noexcept;      // cudaFree; errors ignored (used from destructors)
  void (*to_device)(void* dst, const void* src, std::size_t bytes);  // host -> device, blocking
  void (*to_host)(void* dst, const void* src, std::size_t bytes);    // device -> host, blocking
  void (*forward_f32)(CellKind, const ForwardArgs<float>&);
  void (*forward_f64)(CellKind, const ForwardArgs<double>&);
  void (*backward_f32)(CellKind, const BackwardArgs<float>&);
  void (*backward_f64)(CellKind, const BackwardArgs<double>&);
};

}  // namespace cuda
}  // namespace pyrnn

// The library's one exported symbol.
extern "C" const pyrnn::cuda::CudaTable* pyrnn_cuda_kernel_table();
