// C = A B^T for a few rows of A (M <= kDotRows), float, AVX2+FMA build only. These products
// (batch 1-8 steps, single steps) read each weight row once and are bound by how fast one row
// is dotted with every row of A: Eigen's dot reduces each (row, row) pair on its own. Here a
// block of weight rows meets up to four rows of A at once (at least 8 independent FMA chains
// for M <= 4, each weight load used M times), and each sum is reduced once at the end.
//
// Every element is summed the same way whichever rows it is computed with: 8 lanes over
// k = 0, 8, 16, ... (a masked tail), then a fixed reduction of the lanes. Results do not
// depend on how M or N are split (threads, pairing).
#pragma once

#if defined(__AVX2__) && defined(__FMA__)
#define PYRNN_DOTS_AVX2 1

#include <immintrin.h>

#include "common.h"

namespace pyrnn {
namespace dots {

// Sum of the 8 lanes: (l0+l4) + (l2+l6) + (l1+l5) + (l3+l7) in a fixed order.
inline float lane_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Lanes of the last, partial group of 8 along k: all ones for the first `rest` lanes.
inline __m256i tail_mask(index_t rest) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(rest)), lane);
}

// C[MR, NR] (+)= A[MR, K] W[NR, K]^T for MR <= 4 rows of A and NR <= 2 rows of W.
template <int MR, int NR>
inline void block(index_t K, const float* A, index_t lda, const float* W, index_t ldw, float* C,
                  index_t ldc, bool accumulate) {
  __m256 acc[MR][NR];
  for (int m = 0; m < MR; ++m)
    for (int j = 0; j < NR; ++j) acc[m][j] = _mm256_setzero_ps();
  const index_t full = K / 8 * 8;
  for (index_t k = 0; k < full; k += 8) {
    __m256 w[NR];
    for (int j = 0; j < NR; ++j) w[j] = _mm256_loadu_ps(W + j * ldw + k);
    for (int m = 0; m < MR; ++m) {
      const __m256 a = _mm256_loadu_ps(A + m * lda + k);
      for (int j = 0; j < NR; ++j) acc[m][j] = _mm256_fmadd_ps(a, w[j], acc[m][j]);
    }
  }
  if (full < K) {
    const __m256i mask = tail_mask(K - full);
    __m256 w[NR];
    for (int j = 0; j < NR; ++j) w[j] = _mm256_maskload_ps(W + j * ldw + full, mask);
    for (int m = 0; m < MR; ++m) {
      const __m256 a = _mm256_maskload_ps(A + m * lda + full, mask);
      for (int j = 0; j < NR; ++j) acc[m][j] = _mm256_fmadd_ps(a, w[j], acc[m][j]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int j = 0; j < NR; ++j) {
      const float d = lane_sum(acc[m][j]);
      float& c = C[m * ldc + j];
      c = accumulate ? c + d : d;
    }
}

// A block of `rows` <= 4 rows of A against NR weight rows.
template <int NR>
inline void rows_block(index_t rows, index_t K, const float* A, index_t lda, const float* W,
                       index_t ldw, float* C, index_t ldc, bool accumulate) {
  switch (rows) {
    case 4: return block<4, NR>(K, A, lda, W, ldw, C, ldc, accumulate);
    case 3: return block<3, NR>(K, A, lda, W, ldw, C, ldc, accumulate);
    case 2: return block<2, NR>(K, A, lda, W, ldw, C, ldc, accumulate);
    default: return block<1, NR>(K, A, lda, W, ldw, C, ldc, accumulate);
  }
}

// Rows [0, M) of A against weight rows [n, n + NR) for M <= 4, NR weight rows at a time, the
// last N % NR rows one by one. NR is chosen so that M * NR >= 8 independent FMA chains hide
// the FMA latency even for one row of A.
template <int MR, int NR>
inline void sweep(index_t N, index_t K, const float* A, index_t lda, const float* W, index_t ldw,
                  float* C, index_t ldc, bool accumulate) {
  index_t n = 0;
  for (; n + NR <= N; n += NR) block<MR, NR>(K, A, lda, W + n * ldw, ldw, C + n, ldc, accumulate);
  for (; n < N; ++n) block<MR, 1>(K, A, lda, W + n * ldw, ldw, C + n, ldc, accumulate);
}

}  // namespace dots

// C[M,N] (+)= A[M,K] * B[N,K]^T, float, any M (meant for M <= kDotRows).
inline void gemm_nt_dots(index_t M, index_t N, index_t K, const float* A, index_t lda,
                         const float* B, index_t ldb, float* C, index_t ldc, bool accumulate) {
  switch (M) {
    case 0: return;
    case 1: return dots::sweep<1, 8>(N, K, A, lda, B, ldb, C, ldc, accumulate);
    case 2: return dots::sweep<2, 4>(N, K, A, lda, B, ldb, C, ldc, accumulate);
    case 3: return dots::sweep<3, 2>(N, K, A, lda, B, ldb, C, ldc, accumulate);
    case 4: return dots::sweep<4, 2>(N, K, A, lda, B, ldb, C, ldc, accumulate);
    default: break;
  }
  // More than 4 rows: blocks of 4 rows per pair of weight rows, so each weight row is read once.
  for (index_t n = 0; n < N; n += 2) {
    const bool pair = n + 1 < N;
    for (index_t m = 0; m < M; m += 4) {
      const index_t rows = M - m < 4 ? M - m : 4;
      const float* a = A + m * lda;
      const float* w = B + n * ldb;
      float* c = C + m * ldc + n;
      if (pair)
        dots::rows_block<2>(rows, K, a, lda, w, ldb, c, ldc, accumulate);
      else
        dots::rows_block<1>(rows, K, a, lda, w, ldb, c, ldc, accumulate);
    }
  }
}

}  // namespace pyrnn

#endif  // __AVX2__ && __FMA__
