// Row-major GEMM wrappers over Eigen, single-threaded (EIGEN_DONT_PARALLELIZE): threads come
// from our own parallel regions, each calling these on its own slice.
#pragma once

#include <Eigen/Core>

#include "common.h"
#include "dots_avx2.h"  // the float overload of gemm_nt_dots on the AVX2+FMA build

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

// C[M,N] (+)= A[M,K] * B[N,K]^T for M <= kDotRows (any M works).
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
  if (M <= kDotRows) return gemm_nt_dots(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
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
