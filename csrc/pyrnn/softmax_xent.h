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
#include "norms.h"
#include "parallel.h"
#include "thread_plan.h"

namespace pyrnn {

// Threads worth M rows of C classes (about 10 operations an element), at most `requested`.
inline int softmax_xent_threads(int requested, index_t M, index_t C) {
  return detail::threads_for_work(requested, 10.0 * double(M) * double(C),
                                  detail::kMinBatchFlopsPerThread);
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
      const auto larger = [](T a, T b) { return b > a ? b : a; };  // NaN skipped
      T shift = lane_reduce(row, C, -std::numeric_limits<T>::infinity(), larger, larger);
      if (!std::isfinite(shift)) shift = T(0);
      for (index_t j = 0; j < C; ++j) g[j] = row[j] - shift;
      exp_inplace(g, C);
      const auto add = [](T a, T b) { return a + b; };
      const T total = lane_reduce(g, C, T(0), add, add);
      nll[m] = double(std::log(total) - (row[t] - shift));
      const T norm = scale / total;
      for (index_t j = 0; j < C; ++j) g[j] *= norm;
      g[t] -= scale;
    }
  });
}

}  // namespace pyrnn
