// RAII owners of device memory (cudaMalloc, never managed memory) and of a CUDA stream: freed on
// every path, exceptions included. Destructors ignore CUDA errors (they must not throw; an error
// that matters has already been reported by a checked call).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

#include "cuda_check.h"
#include "pyrnn/common.h"

namespace pyrnn {
namespace cuda {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(index_t n) : n_(n) {
    if (n > 0) PYRNN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), sizeof(T) * size_t(n)));
  }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(o.n_) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return p_; }  // nullptr when empty
  index_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  index_t n_ = 0;
};

// A blocking stream (cudaStreamCreate): it is ordered with the legacy default stream, which the
// host<->device copies of the table use, so a kernel never runs ahead of its input upload.
class Stream {
 public:
  Stream() { PYRNN_CUDA_CHECK(cudaStreamCreate(&s_)); }
  ~Stream() {
    if (s_) cudaStreamDestroy(s_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const { return s_; }
  void synchronize() const { PYRNN_CUDA_CHECK(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_ = nullptr;
};

}  // namespace cuda
}  // namespace pyrnn
