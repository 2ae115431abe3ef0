// The library's entry table (api.h): device query, device memory, and dispatch from CellKind to
// the cell kernels. The only exported symbol is pyrnn_cuda_kernel_table.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>

#include "api.h"
#include "cuda_check.h"
#include "kernels.h"

// Variadic: with several architectures __CUDA_ARCH_LIST__ expands to a comma-separated list.
#define PYRNN_CUDA_STR2(...) #__VA_ARGS__
#define PYRNN_CUDA_STR(...) PYRNN_CUDA_STR2(__VA_ARGS__)

namespace pyrnn {
namespace cuda {
namespace {

// The GPU architectures this file was compiled for (nvcc's __CUDA_ARCH_LIST__, e.g. "800,900");
// CMake compiles every CUDA source of the library for the same list.
const char* architectures() {
#ifdef __CUDA_ARCH_LIST__
  return PYRNN_CUDA_STR(__CUDA_ARCH_LIST__);
#else
  return "unknown";
#endif
}

// Launch-free probe: cudaFuncGetAttributes fails when this library holds no code for the device.
__global__ void probe_kernel() {}

template <typename T>
void forward(CellKind k, const ForwardArgs<T>& a) {
  switch (k) {
    case CellKind::LSTM: return lstm_forward(a);
    case CellKind::GRU: return gru_forward(a);
    case CellKind::RNN_TANH: return rnn_forward(false, a);
    case CellKind::RNN_RELU: return rnn_forward(true, a);
    case CellKind::LSTM_COUPLED:      // the CPU-only variants: register_cuda.cpp's cell_kind
    case CellKind::LSTM_PEEPHOLE:     // refuses them before any call gets here
    case CellKind::GRU_RESET_BEFORE: return;
  }
}

template <typename T>
void backward(CellKind k, const BackwardArgs<T>& a) {
  switch (k) {
    case CellKind::LSTM: return lstm_backward(a);
    case CellKind::GRU: return gru_backward(a);
    case CellKind::RNN_TANH: return rnn_backward(false, a);
    case CellKind::RNN_RELU: return rnn_backward(true, a);
    case CellKind::LSTM_COUPLED:      // the CPU-only variants: register_cuda.cpp's cell_kind
    case CellKind::LSTM_PEEPHOLE:     // refuses them before any call gets here
    case CellKind::GRU_RESET_BEFORE: return;
  }
}

void set_error(DeviceInfo* out, const char* what, cudaError_t e) {
  std::snprintf(out->error, sizeof(out->error), "%s: %s: %s", what, cudaGetErrorName(e),
                cudaGetErrorString(e));
  cudaGetLastError();  // clear it, so it does not resurface at an unrelated later check
}

void device_info(DeviceInfo* out) noexcept {
  std::memset(out, 0, sizeof(*out));
  out->device = -1;
  cudaRuntimeGetVersion(&out->runtime_version);
  if (cudaDriverGetVersion(&out->driver_version) != cudaSuccess) out->driver_version = 0;
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    return set_error(out,
                     out->driver_version == 0
                         ? "no NVIDIA driver is installed (no GPU here?); cudaGetDeviceCount"
                         : "cudaGetDeviceCount",
                     e);
  out->device_count = count;
  if (count == 0) {
    std::snprintf(out->error, sizeof(out->error), "the CUDA runtime sees no device");
    return;
  }
  int dev = 0;
  if ((e = cudaGetDevice(&dev)) != cudaSuccess) return set_error(out, "cudaGetDevice", e);
  cudaDeviceProp prop;
  if ((e = cudaGetDeviceProperties(&prop, dev)) != cudaSuccess)
    return set_error(out, "cudaGetDeviceProperties", e);
  std::snprintf(out->name, sizeof(out->name), "%s", prop.name);
  out->cc_major = prop.major;
  out->cc_minor = prop.minor;
  out->total_memory = prop.totalGlobalMem;
  cudaFuncAttributes attr;
  if ((e = cudaFuncGetAttributes(&attr, probe_kernel)) != cudaSuccess) {
    std::snprintf(out->error, sizeof(out->error),
                  "pyrnn's CUDA kernels have no code for this GPU (sm_%d%d; built for %s): %s: %s",
                  prop.major, prop.minor, architectures(), cudaGetErrorName(e),
                  cudaGetErrorString(e));
    cudaGetLastError();
    return;
  }
  out->device = dev;
}

void* device_malloc(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  PYRNN_CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

void device_free(void* p) noexcept {
  if (p) cudaFree(p);
}

void to_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes) PYRNN_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void to_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes) PYRNN_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

}  // namespace
}  // namespace cuda
}  // namespace pyrnn

extern "C" __attribute__((visibility("default"))) const pyrnn::cuda::CudaTable*
pyrnn_cuda_kernel_table() {
  using namespace pyrnn::cuda;
  static const CudaTable table{kApiVersion,
                               architectures(),
                               &device_info,
                               &device_malloc,
                               &device_free,
                               &to_device,
                               &to_host,
                               &forward<float>,
                               &forward<double>,
                               &backward<float>,
                               &backward<double>};
  return &table;
}
