// Row-major GEMM and column sums on the device through cuBLAS. Only blas.cu includes cuBLAS's
// headers; the rest of the CUDA sources see this class.
#pragma once

#include <cuda_runtime_api.h>

#include "pyrnn/common.h"

namespace pyrnn {
namespace cuda {

class Blas {
 public:
  // Leases a cuBLAS handle for the current device from a process-wide pool (handles are not
  // safe to share between threads at once) and binds it to `stream`.
  explicit Blas(cudaStream_t stream);
  ~Blas();  // returns the handle to the pool
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;

  // Row-major C[m, n] = op(A)[m, k] op(B)[k, n] + beta C (see gemm_layout.h for the storage of
  // A and B). k == 0 with beta == 0 zeroes C, which must then be contiguous (ldc == n).
  void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const float* A,
            index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc);
  void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const double* A,
            index_t lda, const double* B, index_t ldb, double beta, double* C, index_t ldc);

  // y[n] = column sums of the row-major A[m, n]; ones[m] holds 1. m == 0 zeroes y.
  void colsum(index_t m, index_t n, const float* A, const float* ones, float* y);
  void colsum(index_t m, index_t n, const double* A, const double* ones, double* y);

 private:
  void* handle_;  // cublasHandle_t
  int device_;
  cudaStream_t stream_;
};

}  // namespace cuda
}  // namespace pyrnn
