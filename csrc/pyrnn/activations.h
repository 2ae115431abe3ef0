// Activations over contiguous runs of values, vectorised through Eigen's packet math.
//
// Every element takes the same packet code path whatever its address or position, so results
// are bitwise reproducible from call to call and independent of how units are split among
// threads (Eigen's scalar and packet versions of exp differ in the last bit, and plain dynamic
// Maps peel unaligned heads into scalar code): whole blocks of a fixed size are mapped in place
// with unaligned packet loads (a fixed-size Map is never peeled), first blocks of 64, then of 16;
// the last partial block of 16 goes through an aligned buffer padded with zeros. The small
// blocks keep short runs (a few units per gate, H = 17) from computing 64 values for each
// (bench, LSTM inference T=120 B=48 H=17: the pointwise code took half the time).
#pragma once

#include <Eigen/Core>
#include <algorithm>

#include "common.h"

namespace pyrnn {
namespace detail {

constexpr index_t kActivationBlock = 64;  // both multiples of every packet size (AVX-512 too)
constexpr index_t kActivationTail = 16;

template <typename T, class Op>
inline void apply_blocked(T* v /*[n]*/, index_t n, Op op) {
  using Block = Eigen::Array<T, kActivationBlock, 1>;
  using Tail = Eigen::Array<T, kActivationTail, 1>;
  index_t s = 0;
  for (; s + kActivationBlock <= n; s += kActivationBlock) {
    Eigen::Map<Block, Eigen::Unaligned> a(v + s);
    op(a);
  }
  for (; s + kActivationTail <= n; s += kActivationTail) {
    Eigen::Map<Tail, Eigen::Unaligned> a(v + s);
    op(a);
  }
  if (s == n) return;
  alignas(64) T buf[kActivationTail];
  Eigen::Map<Tail, Eigen::Aligned64> a(buf);
  const index_t m = n - s;
  // Fixed-length loops (masked moves), not copy_n's library calls of a few bytes each.
  for (index_t k = 0; k < kActivationTail; ++k) buf[k] = k < m ? v[s + k] : T(0);
  op(a);
  for (index_t k = 0; k < kActivationTail; ++k)
    if (k < m) v[s + k] = buf[k];
}

}  // namespace detail

template <typename T>
inline void sigmoid_inplace(T* v /*[n]*/, index_t n) {
  detail::apply_blocked(v, n, [](auto& a) { a = a.logistic(); });
}

template <typename T>
inline void tanh_inplace(T* v /*[n]*/, index_t n) {
  detail::apply_blocked(v, n, [](auto& a) { a = a.tanh(); });
}

// Sigmoid over `rows` rows of `stride` values and tanh over [t0, t1) of each row, in one pass:
// tanh(x) = 2 s(2x) - 1. At small H each activation call is one or two vectors whose rational
// approximation (with a division) is latency-bound; one call over all the gates (and rows)
// overlaps them.
template <typename T>
inline void sigmoid_with_tanh_rows(T* v /*[rows, stride]*/, index_t rows, index_t stride,
                                   index_t t0, index_t t1) {
  for (index_t b = 0; b < rows; ++b)
    for (index_t k = t0; k < t1; ++k) v[b * stride + k] *= T(2);
  sigmoid_inplace(v, rows * stride);
  for (index_t b = 0; b < rows; ++b)
    for (index_t k = t0; k < t1; ++k) v[b * stride + k] = T(2) * v[b * stride + k] - T(1);
}
template <typename T>
inline void sigmoid_with_tanh_inplace(T* v /*[n]*/, index_t n, index_t t0, index_t t1) {
  sigmoid_with_tanh_rows(v, 1, n, t0, t1);
}

// Whether activations over runs of n values end in a partial block (the padded copy above).
inline bool partial_vectors(index_t n) { return n % detail::kActivationTail != 0; }

template <typename T>
inline void exp_inplace(T* v /*[n]*/, index_t n) {
  detail::apply_blocked(v, n, [](auto& a) { a = a.exp(); });
}

template <typename T>
inline void relu_inplace(T* v /*[n]*/, index_t n) {
  for (index_t k = 0; k < n; ++k) v[k] = v[k] < T(0) ? T(0) : v[k];  // NaN stays NaN
}

}  // namespace pyrnn
