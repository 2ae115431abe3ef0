// The float vector of the build: 16 lanes (AVX-512F/BW/DQ/VL) or 8 lanes (AVX2+FMA), for the
// hand-written kernels (dots.h). PYRNN_SIMD_F32 is defined when one of them is available.
#pragma once

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && \
    defined(__AVX512VL__)
#define PYRNN_SIMD_F32 16
#elif defined(__AVX2__) && defined(__FMA__)
#define PYRNN_SIMD_F32 8
#endif

#ifdef PYRNN_SIMD_F32
#include <immintrin.h>

#include "common.h"

namespace pyrnn {
namespace simd {

#if PYRNN_SIMD_F32 == 16
struct F32 {
  using reg = __m512;
  static constexpr int lanes = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg loadu(const float* p) { return _mm512_loadu_ps(p); }
  static reg load(const float* p) { return _mm512_load_ps(p); }  // 64-byte aligned
  static reg bcast(const float* p) { return _mm512_set1_ps(*p); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static void storeu(float* p, reg v) { _mm512_storeu_ps(p, v); }
  // The first `rest` (< lanes) elements, zeros in the other lanes; reads nothing beyond them.
  static reg load_first(const float* p, index_t rest) {
    return _mm512_maskz_loadu_ps(__mmask16((1u << rest) - 1u), p);
  }
  // Sum of the lanes in a fixed order: halves added down to 8, 4, 2, 1 lanes.
  static float sum(reg v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // out[q] = sum(v[q]) for all 16 q, bitwise, with the same additions done for all vectors at
  // once (30 shuffles instead of 16 x 4 dependent reductions): v is overwritten.
  static void sums(reg* v /*[16]*/, float* out /*[16]*/) {
    for (int q = 0; q < 8; ++q)  // halves: 256-bit sums of v[2q], v[2q+1] side by side
      v[q] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * q], v[2 * q + 1], 0x44),
                           _mm512_shuffle_f32x4(v[2 * q], v[2 * q + 1], 0xEE));
    for (int q = 0; q < 4; ++q)  // quarters: 128-bit sums of four vectors
      v[q] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * q], v[2 * q + 1], 0x88),
                           _mm512_shuffle_f32x4(v[2 * q], v[2 * q + 1], 0xDD));
    for (int q = 0; q < 2; ++q)  // in each 128-bit lane, lanes 0+2 and 1+3 of two vectors
      v[q] = _mm512_add_ps(_mm512_shuffle_ps(v[2 * q], v[2 * q + 1], 0x44),
                           _mm512_shuffle_ps(v[2 * q], v[2 * q + 1], 0xEE));
    // (0+2) + (1+3): 128-bit lane k holds the sums of v[k], v[k+4], v[k+8], v[k+12]
    const reg t = _mm512_add_ps(_mm512_shuffle_ps(v[0], v[1], 0x88),
                                _mm512_shuffle_ps(v[0], v[1], 0xDD));
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_ps(out, _mm512_permutexvar_ps(order, t));
  }
};
#else
struct F32 {
  using reg = __m256;
  static constexpr int lanes = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg loadu(const float* p) { return _mm256_loadu_ps(p); }
  static reg load(const float* p) { return _mm256_load_ps(p); }  // 32-byte aligned
  static reg bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static void storeu(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg load_first(const float* p, index_t rest) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(int(rest)), lane));
  }
  // (l0+l4) + (l2+l6) + (l1+l5) + (l3+l7) in a fixed order.
  static float sum(reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // out[q] = sum(v[q]) for all 8 q, bitwise, with the same additions done for all vectors at
  // once: v is overwritten.
  static void sums(reg* v /*[8]*/, float* out /*[8]*/) {
    for (int q = 0; q < 4; ++q)  // halves: 128-bit sums of v[2q], v[2q+1] side by side
      v[q] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * q], v[2 * q + 1], 0x20),
                           _mm256_permute2f128_ps(v[2 * q], v[2 * q + 1], 0x31));
    for (int q = 0; q < 2; ++q)  // in each 128-bit lane, lanes 0+2 and 1+3 of two vectors
      v[q] = _mm256_add_ps(_mm256_shuffle_ps(v[2 * q], v[2 * q + 1], 0x44),
                           _mm256_shuffle_ps(v[2 * q], v[2 * q + 1], 0xEE));
    // (0+2) + (1+3): 128-bit lane k holds the sums of v[k], v[k+2], v[k+4], v[k+6]
    const reg t = _mm256_add_ps(_mm256_shuffle_ps(v[0], v[1], 0x88),
                                _mm256_shuffle_ps(v[0], v[1], 0xDD));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    _mm256_storeu_ps(out, _mm256_permutevar8x32_ps(t, order));
  }
};
#endif

}  // namespace simd
}  // namespace pyrnn

#endif  // PYRNN_SIMD_F32
