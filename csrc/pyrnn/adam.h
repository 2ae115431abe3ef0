// One Adam step over a parameter array, fused: torch.optim.Adam's operations in its order and
// its rounding (each operation rounded to T, no contraction into FMAs: the file that
// instantiates this is compiled with -ffp-contract=off), in one pass instead of a dozen.
#pragma once

#include <cmath>

#include "common.h"
#include "parallel.h"
#include "thread_plan.h"

namespace pyrnn {

// The step's constants, as Python computes them in double (each is rounded to T once).
struct AdamStep {
  double one_minus_beta1, beta2, one_minus_beta2, correction2, eps, step_size;
};

// Adam over one contiguous range. A function of its own, with the constants by value: inside
// the threads' closure GCC did not vectorize the loop (scalar sqrt and divides).
template <typename T>
void adam_range(index_t len, T* __restrict p /*[len]*/, const T* __restrict g /*[len]*/,
                T* __restrict m /*[len]*/, T* __restrict v /*[len]*/, T w1, T b2, T w2, T c2,
                T eps, T lr) {
  for (index_t k = 0; k < len; ++k) {
    m[k] += w1 * (g[k] - m[k]);  // lerp toward g with weight 1 - beta1 (< 0.5)
    v[k] = v[k] * b2 + (w2 * g[k]) * g[k];
    const T denom = std::sqrt(v[k]) / c2 + eps;
    p[k] -= lr * (m[k] / denom);
  }
}

template <typename T>
void adam_update(index_t n, T* p /*[n]*/, const T* g /*[n]*/, T* m /*[n]*/, T* v /*[n]*/,
                 const AdamStep& s, int threads) {
  const T w1 = T(s.one_minus_beta1), b2 = T(s.beta2), w2 = T(s.one_minus_beta2),
          c2 = T(s.correction2), eps = T(s.eps), lr = T(s.step_size);
  const int nt = detail::threads_for_work(threads, double(n), detail::kMinElementsPerThread);
  parallel_region(nt, [&](int tid, int nthreads, StepBarrier&) {
    const Range r = split_range(n, nthreads, tid, 16);
    adam_range(r.end - r.begin, p + r.begin, g + r.begin, m + r.begin, v + r.begin, w1, b2, w2,
               c2, eps, lr);
  });
}

}  // namespace pyrnn
