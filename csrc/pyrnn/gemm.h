// Row-major GEMM wrappers over Eigen, single-threaded (EIGEN_DONT_PARALLELIZE): threads come
// from our own parallel regions, each calling these on its own slice.
//
// Why Eigen: with the AVX-512 build and its blocking taken from the machine's L1d (packed
// depth blocks in packed_gemm.h, Eigen's own in kernel_table.cc), the steps' packed products
// run at or above torch.mm's MKL rate on the same shapes (bench/bench_gemm.py, Intel Xeon: 1.23x
// geometric mean over the bench's recurrent and input shapes, 99-104% of the machine's peak on
// those of up to 1 MiB of weights), and the large weight-gradient GEMMs at 89-95% of it. A
// micro-kernel of our own would have to beat that; OpenBLAS (scipy-openblas32) measured about
// Eigen's rate on one core and would add a runtime dependency and its own threads.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <type_traits>

#include "cache_info.h"
#include "common.h"
#include "dots.h"  // the float overload of gemm_nt_dots on the AVX2 and AVX-512 builds

namespace pyrnn {

template <typename T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MatMap = Eigen::Map<RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using ConstMatMap = Eigen::Map<const RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// Up to this many rows of A, C = A B^T is computed as dot products of rows: each row of B is
// read once and stays in L1 for all M rows. Eigen's GEMM would first copy (pack) all of B, which
// for a few rows costs as much as the product (bench: single-step T=1 calls, batch 1-8).
constexpr index_t kDotRows = 8;
#ifdef PYRNN_DOTS
// The float AVX2 tiles (dots.h) keep up with Eigen's GEMM to about 32 rows, and to 64 while
// Eigen's packing of B has to stream weights of several L2s through L3. Eigen's AVX-512 GEMM
// (48-row panels at two FMAs a cycle) overtakes the 16-wide tiles sooner: from 8 rows with
// weights in L2, from 16 with weights beyond it.
#if PYRNN_SIMD_F32 == 16
constexpr index_t kDotRowsSimd = 6;
constexpr index_t kDotRowsSimdLargeWeights = 16;
#else
constexpr index_t kDotRowsSimd = 32;
constexpr index_t kDotRowsSimdLargeWeights = 64;
#endif
inline double large_weight_bytes() { return 4.0 * cache_sizes().l2; }
#endif

// Whether C[M,N] = A[M,K] B[N,K]^T runs as dot products (gemm_nt_dots) rather than Eigen's GEMM.
template <typename T>
inline bool use_dots(index_t M, index_t N, index_t K) {
#ifdef PYRNN_DOTS
  if (std::is_same<T, float>::value)
    return M <= kDotRowsSimd ||
           (M <= kDotRowsSimdLargeWeights && 4.0 * double(N) * double(K) >= large_weight_bytes());
#endif
  (void)N;
  (void)K;
  return M <= kDotRows;
}

// dst[n * ldd + k] = src[n + k * lds] for n < N, k < K: in 8 x 8 blocks, so that both sides
// are read and written in whole cache lines.
template <typename T>
inline void transpose_into(index_t N, index_t K, const T* src, index_t lds, T* dst, index_t ldd) {
#ifdef PYRNN_DOTS
  if constexpr (std::is_same<T, float>::value) return dots::transpose(N, K, src, lds, dst, ldd);
#endif
  constexpr index_t kB = 8;
  for (index_t k0 = 0; k0 < K; k0 += kB)
    for (index_t n0 = 0; n0 < N; n0 += kB) {
      const index_t k1 = std::min(K, k0 + kB), n1 = std::min(N, n0 + kB);
      for (index_t n = n0; n < n1; ++n)
        for (index_t k = k0; k < k1; ++k) dst[n * ldd + k] = src[n + k * lds];
    }
}

// C[M,N] (+)= A[M,K] * B[N,K]^T for few rows (any M works).
template <typename T>
inline void gemm_nt_dots(index_t M, index_t N, index_t K, const T* A, index_t lda, const T* B,
                         index_t ldb, T* C, index_t ldc, bool accumulate) {
  using Row = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;
  for (index_t n = 0; n < N; ++n) {
    const Row b(B + n * ldb, K);
    for (index_t m = 0; m < M; ++m) {
      T& c = C[m * ldc + n];
      if (K <= 0) {  // an empty sum (Eigen's dot wants at least one term)
        if (!accumulate) c = T(0);
        continue;
      }
      const T d = Row(A + m * lda, K).dot(b);
      c = accumulate ? c + d : d;
    }
  }
}

// C[M,N] (+)= A[M,K] * B[N,K]^T
template <typename T>
inline void gemm_nt(index_t M, index_t N, index_t K, const T* A, index_t lda, const T* B,
                    index_t ldb, T* C, index_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  MatMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (K <= 0) {
    if (!accumulate) c.setZero();
    return;
  }
  ConstMatMap<T> a(A, M, K, Eigen::OuterStride<>(lda));
  ConstMatMap<T> b(B, N, K, Eigen::OuterStride<>(ldb));
  if (accumulate)
    c.noalias() += a * b.transpose();
  else
    c.noalias() = a * b.transpose();
}

// C[M,N] (+)= A[M,K] * B[K,N]
template <typename T>
inline void gemm_nn(index_t M, index_t N, index_t K, const T* A, index_t lda, const T* B,
                    index_t ldb, T* C, index_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  MatMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (K <= 0) {
    if (!accumulate) c.setZero();
    return;
  }
  ConstMatMap<T> a(A, M, K, Eigen::OuterStride<>(lda));
  ConstMatMap<T> b(B, K, N, Eigen::OuterStride<>(ldb));
  if (accumulate)
    c.noalias() += a * b;
  else
    c.noalias() = a * b;
}

// C[M,N] (+)= A[K,M]^T * B[K,N]
template <typename T>
inline void gemm_tn(index_t M, index_t N, index_t K, const T* A, index_t lda, const T* B,
                    index_t ldb, T* C, index_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  MatMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (K <= 0) {
    if (!accumulate) c.setZero();
    return;
  }
  ConstMatMap<T> a(A, K, M, Eigen::OuterStride<>(lda));
  ConstMatMap<T> b(B, K, N, Eigen::OuterStride<>(ldb));
  if (accumulate)
    c.noalias() += a.transpose() * b;
  else
    c.noalias() = a.transpose() * b;
}

}  // namespace pyrnn
