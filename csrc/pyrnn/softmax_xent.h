// Softmax cross-entropy over rows of logits and its gradient in one pass per row, on the
// kernels' threads (pyrnn.nn.softmax_cross_entropy: the language models' loss). NumPy's version
// makes eight passes over the logits on one core, a serial stretch of every training step.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "activations.h"
#include "common.h"
#include "parallel.h"
#include "thread_plan.h"

namespace pyrnn {

// Threads worth M rows of C classes (about 10 operations an element), at most `requested`.
inline int softmax_xent_threads(int requested, index_t M, index_t C) {
  const index_t by_work = index_t(10.0 * double(M) * double(C) / detail::kMinBatchFlopsPerThread);
  return int(std::max<index_t>(1, std::min<index_t>(index_t(requested), by_work)));
}

// op over v[0, n) from `init` in kLanes independent chains (a vector's lanes), combined at the
// end: one dependent chain of n adds would take n times the add's latency.
constexpr index_t kReduceLanes = 16;
template <typename T, class Op>
inline T row_reduce(const T* v /*[n]*/, index_t n, T init, Op op) {
  T part[kReduceLanes];
  std::fill_n(part, kReduceLanes, init);
  index_t j = 0;
  for (; j + kReduceLanes <= n; j += kReduceLanes)
    for (index_t q = 0; q < kReduceLanes; ++q) part[q] = op(part[q], v[j + q]);
  for (; j < n; ++j) part[0] = op(part[0], v[j]);
  T out = init;
  for (index_t q = 0; q < kReduceLanes; ++q) out = op(out, part[q]);
  return out;
}

// For each row m with target[m] >= 0 (counted; target[m] < C, checked by the caller):
// nll[m] = log(sum_j exp(x[m, j] - s)) - (x[m, t] - s) with s the row's maximum (0 when it is
// not finite), grad[m, :] = scale * (softmax(x[m, :]) - onehot(t)). Rows with target[m] < 0:
// nll[m] = 0, grad[m, :] = 0, their logits unread (they may hold NaN).
template <typename T>
void softmax_xent(index_t M, index_t C, const T* x /*[M, C]*/, const std::int64_t* target /*[M]*/,
                  T scale, T* grad /*[M, C]*/, double* nll /*[M]*/, int threads) {
  const int nt = softmax_xent_threads(threads, M, C);
  parallel_region(nt, [&](int tid, int nthreads, StepBarrier&) {
    const Range r = split_range(M, nthreads, tid, 1);
    for (index_t m = r.begin; m < r.end; ++m) {
      const T* row = x + m * C;  // [C]
      T* g = grad + m * C;       // [C]
      const std::int64_t t = target[m];
      if (t < 0 || C == 0) {
        std::fill_n(g, C, T(0));
        nll[m] = 0.0;
        continue;
      }
      T shift = row_reduce(row, C, -std::numeric_limits<T>::infinity(),
                           [](T a, T b) { return b > a ? b : a; });  // NaN skipped
      if (!std::isfinite(shift)) shift = T(0);
      for (index_t j = 0; j < C; ++j) g[j] = row[j] - shift;
      exp_inplace(g, C);
      const T total = row_reduce(g, C, T(0), [](T a, T b) { return a + b; });
      nll[m] = double(std::log(total) - (row[t] - shift));
      const T norm = scale / total;
      for (index_t j = 0; j < C; ++j) g[j] *= norm;
      g[t] -= scale;
    }
  });
}

}  // namespace pyrnn
