// DeviceExec: the GPU execution policy of the driver (recurrent.h). One blocking stream and one
// leased cuBLAS handle per call; every launch and CUDA call checked; finish() synchronises and so
// reports errors raised while kernels ran. Kernels are templated on the cell and grid-stride over
// the B*H (batch row, unit) elements of a step.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>

#include "blas.h"
#include "cuda_check.h"
#include "device_buffer.h"
#include "step.h"

namespace pyrnn {
namespace cuda {

constexpr int kThreadsPerBlock = 256;

inline unsigned blocks_for(index_t n) {
  return unsigned(std::min<index_t>((n + kThreadsPerBlock - 1) / kThreadsPerBlock, 1 << 20));
}

template <typename T, class Cell>
__global__ void forward_step_kernel(StepForward<T> p, index_t n) {
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += index_t(gridDim.x) * blockDim.x)
    forward_step_at<T, Cell>(p, i);
}

template <typename T, class Cell>
__global__ void backward_step_kernel(StepBackward<T> p, index_t n) {
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += index_t(gridDim.x) * blockDim.x)
    backward_step_at<T, Cell>(p, i);
}

template <typename T>
__global__ void mask_padding_kernel(const T* x /*[T, B, I]*/, const index_t* lengths /*[B]*/,
                                    index_t steps, index_t B, index_t I, T* out /*[T, B, I]*/) {
  const index_t n = steps * B * I;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += index_t(gridDim.x) * blockDim.x)
    mask_padding_at(x, lengths, steps, B, I, out, i);
}

template <typename T>
__global__ void fill_kernel(T* p /*[n]*/, T value, index_t n) {
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += index_t(gridDim.x) * blockDim.x)
    p[i] = value;
}

class DeviceExec {
 public:
  DeviceExec() : blas_(stream_.get()) {}

  template <typename T>
  DeviceBuffer<T> alloc(index_t n) {
    return DeviceBuffer<T>(n);
  }

  template <typename T>
  void zero(T* p, index_t n) {
    if (n > 0) PYRNN_CUDA_CHECK(cudaMemsetAsync(p, 0, sizeof(T) * size_t(n), stream_.get()));
  }

  template <typename T>
  void copy(T* dst, const T* src, index_t n) {  // device -> device
    if (n > 0)
      PYRNN_CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(T) * size_t(n), cudaMemcpyDeviceToDevice,
                                       stream_.get()));
  }

  template <typename T>
  void fill(T* p, T value, index_t n) {
    if (n == 0) return;
    fill_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream_.get()>>>(p, value, n);
    PYRNN_CUDA_CHECK_LAUNCH("fill_kernel");
  }

  template <typename T>
  void gemm(bool ta, bool tb, index_t m, index_t n, index_t k, const T* A, index_t lda,
            const T* B, index_t ldb, T beta, T* C, index_t ldc) {
    blas_.gemm(ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc);
  }

  template <typename T>
  void colsum(index_t m, index_t n, const T* A, const T* ones, T* y) {
    blas_.colsum(m, n, A, ones, y);
  }

  template <class Cell, typename T>
  void forward_step(const StepForward<T>& p, index_t n) {
    if (n == 0) return;
    forward_step_kernel<T, Cell><<<blocks_for(n), kThreadsPerBlock, 0, stream_.get()>>>(p, n);
    PYRNN_CUDA_CHECK_LAUNCH("forward_step_kernel");
  }

  template <class Cell, typename T>
  void backward_step(const StepBackward<T>& p, index_t n) {
    if (n == 0) return;
    backward_step_kernel<T, Cell><<<blocks_for(n), kThreadsPerBlock, 0, stream_.get()>>>(p, n);
    PYRNN_CUDA_CHECK_LAUNCH("backward_step_kernel");
  }

  template <typename T>
  void mask_padding(const T* x, const index_t* lengths, index_t steps, index_t B, index_t I,
                    T* out) {
    const index_t n = steps * B * I;
    if (n == 0) return;
    mask_padding_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream_.get()>>>(
        x, lengths, steps, B, I, out);
    PYRNN_CUDA_CHECK_LAUNCH("mask_padding_kernel");
  }

  void finish() { stream_.synchronize(); }

 private:
  Stream stream_;  // declared first: blas_ is bound to it
  Blas blas_;
};

}  // namespace cuda
}  // namespace pyrnn
