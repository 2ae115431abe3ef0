// cuBLAS behind Blas (blas.h): the handle pool, checked calls, row-major GEMM via gemm_layout.h.
#include <cublas_v2.h>

#include <climits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "blas.h"
#include "cuda_check.h"
#include "gemm_layout.h"

namespace pyrnn {
namespace cuda {
namespace {

[[noreturn]] void throw_cublas_error(cublasStatus_t s, const char* call, const char* file,
                                     int line) {
  throw std::runtime_error(std::string("cuBLAS error: ") + call + " failed at " + file + ":" +
                           std::to_string(line) + ": " + cublasGetStatusName(s) + ": " +
                           cublasGetStatusString(s));
}

#define PYRNN_CUBLAS_CHECK(call)                                                 \
  do {                                                                           \
    const cublasStatus_t pyrnn_st_ = (call);                                     \
    if (pyrnn_st_ != CUBLAS_STATUS_SUCCESS)                                      \
      throw_cublas_error(pyrnn_st_, #call, __FILE__, __LINE__);                  \
  } while (0)

// Idle handles, each with its device. Never destroyed, on purpose: handles are reused for the
// life of the process, and destroying them from static destructors can run after the CUDA
// runtime has shut down.
struct HandlePool {
  std::mutex mutex;
  std::vector<std::pair<int, cublasHandle_t>> idle;
};

HandlePool& pool() {
  static HandlePool* p = new HandlePool;
  return *p;
}

cublasHandle_t lease(int device) {
  {
    std::lock_guard<std::mutex> lock(pool().mutex);
    auto& idle = pool().idle;
    for (size_t i = 0; i < idle.size(); ++i)
      if (idle[i].first == device) {
        cublasHandle_t h = idle[i].second;
        idle.erase(idle.begin() + std::ptrdiff_t(i));
        return h;
      }
  }
  cublasHandle_t h = nullptr;
  PYRNN_CUBLAS_CHECK(cublasCreate(&h));
  // Full FP32/FP64 arithmetic (no TF32 tensor-op shortcut), as on the CPU.
  const cublasStatus_t s = cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);
  if (s != CUBLAS_STATUS_SUCCESS) {
    cublasDestroy(h);
    throw_cublas_error(s, "cublasSetMathMode(h, CUBLAS_DEFAULT_MATH)", __FILE__, __LINE__);
  }
  return h;
}

int to_int(index_t v, const char* what) {
  if (v < 0 || v > index_t(INT_MAX))
    throw std::runtime_error(std::string("pyrnn CUDA: ") + what + " = " + std::to_string(v) +
                             " exceeds cuBLAS's 32-bit int range");
  return int(v);
}

cublasOperation_t op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

cublasStatus_t xgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                     int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                     const float* beta, float* C, int ldc) {
  return cublasSgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
cublasStatus_t xgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                     int k, const double* alpha, const double* A, int lda, const double* B,
                     int ldb, const double* beta, double* C, int ldc) {
  return cublasDgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
cublasStatus_t xgemv(cublasHandle_t h, int m, int n, const float* alpha, const float* A,
                     int lda, const float* x, const float* beta, float* y) {
  return cublasSgemv(h, CUBLAS_OP_N, m, n, alpha, A, lda, x, 1, beta, y, 1);
}
cublasStatus_t xgemv(cublasHandle_t h, int m, int n, const double* alpha, const double* A,
                     int lda, const double* x, const double* beta, double* y) {
  return cublasDgemv(h, CUBLAS_OP_N, m, n, alpha, A, lda, x, 1, beta, y, 1);
}

template <typename T>
void gemm_impl(cublasHandle_t h, cudaStream_t stream, bool trans_a, bool trans_b, index_t m,
               index_t n, index_t k, const T* A, index_t lda, const T* B, index_t ldb, T beta,
               T* C, index_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // BLAS would leave C untouched; the product of empty matrices is zero
    if (beta == T(0)) {
      if (ldc != n) throw std::logic_error("pyrnn CUDA: gemm with k == 0 needs ldc == n");
      PYRNN_CUDA_CHECK(cudaMemsetAsync(C, 0, sizeof(T) * size_t(m * n), stream));
    }
    return;
  }
  const ColMajorGemm<T> g = row_major_gemm(trans_a, trans_b, m, n, k, A, lda, B, ldb, ldc);
  const T one = T(1);
  PYRNN_CUBLAS_CHECK(xgemm(h, op(g.trans_a), op(g.trans_b), to_int(g.m, "gemm m"),
                           to_int(g.n, "gemm n"), to_int(g.k, "gemm k"), &one, g.A,
                           to_int(g.lda, "gemm lda"), g.B, to_int(g.ldb, "gemm ldb"), &beta, C,
                           to_int(g.ldc, "gemm ldc")));
}

template <typename T>
void colsum_impl(cublasHandle_t h, cudaStream_t stream, index_t m, index_t n, const T* A,
                 const T* ones, T* y) {
  if (n == 0) return;
  if (m == 0) {
    PYRNN_CUDA_CHECK(cudaMemsetAsync(y, 0, sizeof(T) * size_t(n), stream));
    return;
  }
  const ColMajorGemv g = row_major_colsum(m, n);
  const T one = T(1), zero = T(0);
  PYRNN_CUBLAS_CHECK(xgemv(h, to_int(g.rows, "colsum n"), to_int(g.cols, "colsum m"), &one, A,
                           to_int(g.lda, "colsum lda"), ones, &zero, y));
}

}  // namespace

Blas::Blas(cudaStream_t stream) : handle_(nullptr), device_(0), stream_(stream) {
  PYRNN_CUDA_CHECK(cudaGetDevice(&device_));
  cublasHandle_t h = lease(device_);
  const cublasStatus_t s = cublasSetStream(h, stream);
  if (s != CUBLAS_STATUS_SUCCESS) {
    cublasDestroy(h);
    throw_cublas_error(s, "cublasSetStream(h, stream)", __FILE__, __LINE__);
  }
  handle_ = h;
}

Blas::~Blas() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  pool().idle.emplace_back(device_, static_cast<cublasHandle_t>(handle_));
}

void Blas::gemm(bool ta, bool tb, index_t m, index_t n, index_t k, const float* A, index_t lda,
                const float* B, index_t ldb, float beta, float* C, index_t ldc) {
  gemm_impl(static_cast<cublasHandle_t>(handle_), stream_, ta, tb, m, n, k, A, lda, B, ldb, beta,
            C, ldc);
}

void Blas::gemm(bool ta, bool tb, index_t m, index_t n, index_t k, const double* A, index_t lda,
                const double* B, index_t ldb, double beta, double* C, index_t ldc) {
  gemm_impl(static_cast<cublasHandle_t>(handle_), stream_, ta, tb, m, n, k, A, lda, B, ldb, beta,
            C, ldc);
}

void Blas::colsum(index_t m, index_t n, const float* A, const float* ones, float* y) {
  colsum_impl(static_cast<cublasHandle_t>(handle_), stream_, m, n, A, ones, y);
}

void Blas::colsum(index_t m, index_t n, const double* A, const double* ones, double* y) {
  colsum_impl(static_cast<cublasHandle_t>(handle_), stream_, m, n, A, ones, y);
}

}  // namespace cuda
}  // namespace pyrnn
