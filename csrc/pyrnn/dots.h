// C = A B^T for up to a few dozen rows of A (gemm.h use_dots), float, on the builds with a
// float vector (simd.h: AVX2+FMA, 8 lanes; AVX-512, 16 lanes). These products (batch 1-4
// steps, single steps, the input projection of a short call) read each weight row once, with
// no packing, and are bound by how fast a block of weight rows is dotted with the rows of A:
// Eigen's dot reduces each (row, row) pair on its own. Here a tile of up to 4 rows of A and up
// to 8 weight rows (at least 8 independent FMA chains, each weight load used for every row of
// the tile) accumulates in registers, and each sum is reduced once at the end.
//
// Every element is summed the same way whichever rows it is computed with: the vector's lanes
// over k = 0, L, 2L, ... (a masked tail), then a fixed reduction of the lanes. Results do not
// depend on how M or N are split (threads, pairing).
#pragma once

#include "simd.h"

#ifdef PYRNN_SIMD_F32
#define PYRNN_DOTS 1

#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "common.h"

namespace pyrnn {
namespace dots {

using V = simd::F32;

// Rows of A above which a tile prefetches the next weight rows. With 1-4 rows the AVX2 build
// is bound by the weight stream and the extra loads slowed it (AMD Zen 4); the AVX-512 build
// gains with every row count while the weights are in L2.
constexpr index_t kPrefetchMinRows = V::lanes == 16 ? 0 : 4;

// C[MR, NR] (+)= A[MR, K] W[NR, K]^T for MR <= 4 rows of A and NR <= 8 rows of W. With
// next_rows > 0 it also prefetches that many weight rows from `next` (ld ldw), one cache line
// per row every 16 k, so that the next block's weights arrive from L3 while this block
// computes. With 1-4 rows the product is bound by the weight stream and the extra loads slowed it.
template <int MR, int NR>
inline void block(index_t K, const float* A, index_t lda, const float* W, index_t ldw, float* C,
                  index_t ldc, bool accumulate, const float* next = nullptr,
                  int next_rows = 0) {
  constexpr index_t L = V::lanes;
  V::reg acc[MR][NR];
  for (int m = 0; m < MR; ++m)
    for (int j = 0; j < NR; ++j) acc[m][j] = V::zero();
  const index_t full = K / L * L;
  for (index_t k = 0; k < full; k += L) {
    if ((k & 15) == 0)
      for (int j = 0; j < next_rows; ++j)
        _mm_prefetch(reinterpret_cast<const char*>(next + j * ldw + k), _MM_HINT_T0);
    V::reg w[NR];
    for (int j = 0; j < NR; ++j) w[j] = V::loadu(W + j * ldw + k);
    for (int m = 0; m < MR; ++m) {
      const V::reg a = V::loadu(A + m * lda + k);
      for (int j = 0; j < NR; ++j) acc[m][j] = V::fmadd(a, w[j], acc[m][j]);
    }
  }
  if (full < K) {
    V::reg w[NR];
    for (int j = 0; j < NR; ++j) w[j] = V::load_first(W + j * ldw + full, K - full);
    for (int m = 0; m < MR; ++m) {
      const V::reg a = V::load_first(A + m * lda + full, K - full);
      for (int j = 0; j < NR; ++j) acc[m][j] = V::fmadd(a, w[j], acc[m][j]);
    }
  }
  auto put = [&](int q, float d) {  // accumulator q = m * NR + j
    float& c = C[(q / NR) * ldc + q % NR];
    c = accumulate ? c + d : d;
  };
  constexpr int kSums = MR * NR;
  if constexpr (kSums < 4) {
    for (int q = 0; q < kSums; ++q) put(q, V::sum(acc[q / NR][q % NR]));
  } else {  // reduced V::lanes at a time (V::sums, bitwise V::sum): fewer shuffles per sum
    for (int q0 = 0; q0 < kSums; q0 += V::lanes) {
      const int n = std::min(V::lanes, kSums - q0);
      V::reg v[V::lanes];
      float d[V::lanes];
      for (int q = 0; q < V::lanes; ++q)
        v[q] = q < n ? acc[(q0 + q) / NR][(q0 + q) % NR] : V::zero();
      V::sums(v, d);
      for (int q = 0; q < n; ++q) put(q0 + q, d[q]);
    }
  }
}

// Rows [0, M) of A against weight rows [0, N): weight rows NR at a time (outer, so each block
// of NR weight rows is read once and stays in L1 for every row of A), rows of A MR <= 4 at a
// time and the last M % MR together; the last N % NR weight rows one by one. MR * NR >= 8
// independent FMA chains hide the FMA latency (M = 1: 1 x 8).
template <int MR, int NR>
inline void tiles(index_t M, index_t N, index_t K, const float* A, index_t lda, const float* W,
                  index_t ldw, float* C, index_t ldc, bool accumulate) {
  auto rows_against = [&](auto nr, index_t n) {
    constexpr int R = decltype(nr)::value;
    // The first block of rows of A prefetches the next weight rows (at most NR of them).
    const float* next = W + (n + R) * ldw;
    int next_rows = M > kPrefetchMinRows ? int(std::min<index_t>(NR, N - n - R)) : 0;
    const float* w = W + n * ldw;
    index_t m = 0;
    for (; m + MR <= M; m += MR, next_rows = 0)
      block<MR, R>(K, A + m * lda, lda, w, ldw, C + m * ldc + n, ldc, accumulate, next,
                   next_rows);
    const float* a = A + m * lda;
    float* c = C + m * ldc + n;
    switch (M - m) {  // the last M % MR rows as one block
      case 3: return block<3, R>(K, a, lda, w, ldw, c, ldc, accumulate, next, next_rows);
      case 2: return block<2, R>(K, a, lda, w, ldw, c, ldc, accumulate, next, next_rows);
      case 1: return block<1, R>(K, a, lda, w, ldw, c, ldc, accumulate, next, next_rows);
      default: return;
    }
  };
  index_t n = 0;
  for (; n + NR <= N; n += NR) rows_against(std::integral_constant<int, NR>{}, n);
  for (; n < N; ++n) rows_against(std::integral_constant<int, 1>{}, n);
}

// The rows of Eigen's packed weight panels (gebp_traits<float, float>::mr): three vectors.
constexpr index_t kPanelRows = 3 * V::lanes;

// C[R, P] += X[R, kc] A^T for one P-row panel (P = kPanelRows) of weights packed by Eigen's
// GEBP packing (element (row i, depth k) at a[k * P + i]) and R <= 3 rows of X read in place:
// the rows left over after the packed kernel's panels of 4. Every element is summed over k in
// one accumulator and then added to C, exactly as Eigen's 3-vector x 4 micro-kernel does for a
// whole panel (so results do not depend on which rows end up left over), with no padded rows.
template <int R>
inline void panel_rows(index_t kc, const float* a, const float* X, index_t ldx, float* C,
                       index_t ldc) {
  constexpr index_t P = kPanelRows, L = V::lanes;
  V::reg acc[R][3];
  for (int r = 0; r < R; ++r)
    for (int p = 0; p < 3; ++p) acc[r][p] = V::zero();
  for (index_t k = 0; k < kc; ++k) {
    const V::reg w0 = V::load(a + k * P), w1 = V::load(a + k * P + L),
                 w2 = V::load(a + k * P + 2 * L);
    for (int r = 0; r < R; ++r) {
      const V::reg x = V::bcast(X + r * ldx + k);
      acc[r][0] = V::fmadd(w0, x, acc[r][0]);
      acc[r][1] = V::fmadd(w1, x, acc[r][1]);
      acc[r][2] = V::fmadd(w2, x, acc[r][2]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int p = 0; p < 3; ++p) {
      float* c = C + r * ldc + L * p;
      V::storeu(c, V::add(V::loadu(c), acc[r][p]));
    }
}

// panel_rows for 1-3 rows chosen at run time.
inline void panel_rows(index_t rows, index_t kc, const float* a, const float* X, index_t ldx,
                       float* C, index_t ldc) {
  switch (rows) {
    case 3: return panel_rows<3>(kc, a, X, ldx, C, ldc);
    case 2: return panel_rows<2>(kc, a, X, ldx, C, ldc);
    case 1: return panel_rows<1>(kc, a, X, ldx, C, ldc);
    default: return;
  }
}

// dst[0..7][0..7] = the transpose of src[0..7][0..7] (rows lds and ldd apart), in AVX registers.
inline void transpose8x8(const float* src, index_t lds, float* dst, index_t ldd) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

// dst[n * ldd + k] = src[n + k * lds] for n < N, k < K: 8 x 8 blocks transposed in AVX
// registers (source rows read as sequential streams), two blocks along k at a time so that
// each destination row gets a whole 64-byte line at once (a line written in two halves far
// apart is fetched twice once the destination outgrows L2); the edges one element at a time.
inline void transpose(index_t N, index_t K, const float* src, index_t lds, float* dst,
                      index_t ldd) {
  index_t k = 0;
  for (; k + 8 <= K; k += 8) {
    const bool pair = k + 16 <= K;
    index_t n = 0;
    for (; n + 8 <= N; n += 8) {
      transpose8x8(src + n + k * lds, lds, dst + n * ldd + k, ldd);
      if (pair) transpose8x8(src + n + (k + 8) * lds, lds, dst + n * ldd + k + 8, ldd);
    }
    for (; n < N; ++n)
      for (index_t i = 0; i < (pair ? 16 : 8); ++i) dst[n * ldd + k + i] = src[n + (k + i) * lds];
    if (pair) k += 8;
  }
  for (; k < K; ++k)
    for (index_t n = 0; n < N; ++n) dst[n * ldd + k] = src[n + k * lds];
}

}  // namespace dots

// C[M,N] (+)= A[M,K] * B[N,K]^T, float, any M. Tile shapes by micro-benchmark (AVX2, N=2048
// K=512, aligned, one thread): 3 x 4 for many rows (M=25: 97 GF/s, the 4 x 2 tiles before it
// 72), 4 x 3 for M = 4, 3 x 4 for M = 3; 12 accumulators leave slack over the FMA latency.
inline void gemm_nt_dots(index_t M, index_t N, index_t K, const float* A, index_t lda,
                         const float* B, index_t ldb, float* C, index_t ldc, bool accumulate) {
  switch (M) {
    case 0: return;
    case 1: return dots::tiles<1, 8>(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    case 2: return dots::tiles<2, 4>(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    case 4: return dots::tiles<4, 3>(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    default: return dots::tiles<3, 4>(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
  }
}

}  // namespace pyrnn

#endif  // PYRNN_SIMD_F32
