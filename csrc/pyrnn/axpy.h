// C[M, N] += A[M, K] Wt[K, N] for a few rows of A (batch 1-4 steps) and small weights, float,
// on the builds with a float vector (simd.h): the "axpy form", over a transposed copy of the
// weights. With small K (units of a small model) a dot per weight row (dots.h) spends more on
// its final lane reduction than on its FMAs; here each k broadcasts A[m, k] and adds it times a
// whole row of Wt into register accumulators, with no reductions at all.
//
// Every element of C gets one accumulator summed over k in ascending order, then added to C:
// the same bits whichever rows or column blocks it is computed with (threads, batch split).
#pragma once

#include "simd.h"

#ifdef PYRNN_SIMD_F32
#define PYRNN_AXPY 1

#include <algorithm>

#include "common.h"

namespace pyrnn {
namespace axpy {

using V = simd::F32;

// The row stride of a transposed copy of N columns: whole vectors, zero-padded.
inline index_t padded(index_t N) { return (N + V::lanes - 1) / V::lanes * V::lanes; }

// Elements of a transposed copy of an [N, K] matrix (plus room to align it).
inline index_t storage(index_t N, index_t K) { return K * padded(N) + V::lanes; }

// dst[k * padded(N) + n] = W[n * ldw + k], zeros past N (every vector load stays in bounds).
inline void transpose(index_t N, index_t K, const float* W /*[N, K], ldw*/, index_t ldw,
                      float* dst /*[K, padded(N)]*/) {
  const index_t ld = padded(N);
  for (index_t k = 0; k < K; ++k) std::fill(dst + k * ld + N, dst + (k + 1) * ld, 0.0f);
  for (index_t n0 = 0; n0 < N; n0 += 16)  // blocks of 16 x 16: both sides stay in L1
    for (index_t k0 = 0; k0 < K; k0 += 16)
      for (index_t n = n0; n < std::min(N, n0 + 16); ++n)
        for (index_t k = k0; k < std::min(K, k0 + 16); ++k) dst[k * ld + n] = W[n * ldw + k];
}

// Columns [c0, c0 + CV*lanes) of C's rows [0, MR): MR*CV accumulators, `cols` of them valid.
template <int MR, int CV>
inline void block(index_t K, const float* A /*[MR, K], lda*/, index_t lda,
                  const float* Wt /*[K, ldw] from column c0*/, index_t ldw, index_t cols,
                  float* C /*[MR, *], ldc, from column c0*/, index_t ldc) {
  constexpr index_t L = V::lanes;
  V::reg acc[MR][CV];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < CV; ++v) acc[m][v] = V::zero();
  for (index_t k = 0; k < K; ++k) {
    V::reg w[CV];
    for (int v = 0; v < CV; ++v) w[v] = V::loadu(Wt + k * ldw + v * L);
    for (int m = 0; m < MR; ++m) {
      const V::reg a = V::bcast(A + m * lda + k);
      for (int v = 0; v < CV; ++v) acc[m][v] = V::fmadd(a, w[v], acc[m][v]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < CV; ++v) {
      float* c = C + m * ldc + v * L;
      const index_t valid = std::min<index_t>(L, cols - v * L);
      if (valid == L) {
        V::storeu(c, V::add(V::loadu(c), acc[m][v]));
      } else {
        alignas(64) float tmp[L];
        V::storeu(tmp, acc[m][v]);
        for (index_t j = 0; j < valid; ++j) c[j] += tmp[j];
      }
    }
}

// All columns of MR rows: blocks of CV vectors (CV*MR accumulators hide the FMA latency and
// leave registers for the weight row and the broadcasts), then the vectors left over.
template <int MR, int CV>
inline void rows(index_t N, index_t K, const float* A, index_t lda, const float* Wt,
                 index_t ldw, float* C, index_t ldc) {
  constexpr index_t L = V::lanes;
  index_t c = 0;
  for (; c + CV * L <= ldw && c < N; c += CV * L)
    block<MR, CV>(K, A, lda, Wt + c, ldw, N - c, C + c, ldc);
  if (c >= N) return;
  switch ((ldw - c) / L) {  // 1 .. CV-1 vectors left (ldw is whole vectors)
    case 1: return block<MR, 1>(K, A, lda, Wt + c, ldw, N - c, C + c, ldc);
    case 2: return block<MR, 2>(K, A, lda, Wt + c, ldw, N - c, C + c, ldc);
    case 3: return block<MR, 3>(K, A, lda, Wt + c, ldw, N - c, C + c, ldc);
    case 4: return block<MR, 4>(K, A, lda, Wt + c, ldw, N - c, C + c, ldc);
    case 5: return block<MR, 5>(K, A, lda, Wt + c, ldw, N - c, C + c, ldc);
    case 6: return block<MR, 6>(K, A, lda, Wt + c, ldw, N - c, C + c, ldc);
    default: return block<MR, 7>(K, A, lda, Wt + c, ldw, N - c, C + c, ldc);
  }
}

// C[M, N] += A[M, K] Wt[K, N] (Wt from transpose(): row stride padded(N)), any M: rows in
// groups of four, the rest together.
inline void multiply_add(index_t M, index_t N, index_t K, const float* A, index_t lda,
                         const float* Wt, index_t ldw, float* C, index_t ldc) {
  index_t m = 0;
  for (; m + 4 <= M; m += 4) rows<4, 4>(N, K, A + m * lda, lda, Wt, ldw, C + m * ldc, ldc);
  switch (M - m) {
    case 1: return rows<1, 8>(N, K, A + m * lda, lda, Wt, ldw, C + m * ldc, ldc);
    case 2: return rows<2, 6>(N, K, A + m * lda, lda, Wt, ldw, C + m * ldc, ldc);
    case 3: return rows<3, 5>(N, K, A + m * lda, lda, Wt, ldw, C + m * ldc, ldc);
    default: return;
  }
}

}  // namespace axpy
}  // namespace pyrnn

#endif  // PYRNN_SIMD_F32
