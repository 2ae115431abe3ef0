// Reductions in independent chains, and the sum of squares of an array in double on the
// kernels' threads (pyrnn.clip_grad_norm's 2-norm). NumPy's dot would run on OpenBLAS, whose
// threads spin after each call and take the cores from the recurrent kernels that follow, and
// sums a float32 array in float32.
#pragma once

#include <algorithm>
#include <vector>

#include "common.h"
#include "parallel.h"
#include "thread_plan.h"

namespace pyrnn {

// op over v[0, n) from `init` in kReduceLanes independent chains (a vector's lanes; one
// dependent chain of n operations would take n times their latency), then
// merge(init, chain 0, ..., chain kReduceLanes-1) in order. `op(acc, v[j])` may widen (double
// sums of float squares).
constexpr index_t kReduceLanes = 16;
template <typename Acc, typename T, class Op, class Merge>
inline Acc lane_reduce(const T* v /*[n]*/, index_t n, Acc init, Op op, Merge merge) {
  Acc part[kReduceLanes];
  std::fill_n(part, kReduceLanes, init);
  index_t j = 0;
  for (; j + kReduceLanes <= n; j += kReduceLanes)
    for (index_t q = 0; q < kReduceLanes; ++q) part[q] = op(part[q], v[j + q]);
  for (; j < n; ++j) part[0] = op(part[0], v[j]);
  Acc out = init;
  for (index_t q = 0; q < kReduceLanes; ++q) out = merge(out, part[q]);
  return out;
}

// The array is summed block by block and the block sums in order, so the result does not
// depend on the thread count.
constexpr index_t kNormBlock = 4096;

template <typename T>
double block_sum_squares(const T* x /*[n]*/, index_t n) {
  return lane_reduce(x, n, 0.0, [](double a, T b) { return a + double(b) * double(b); },
                     [](double a, double b) { return a + b; });
}

template <typename T>
double sum_squares(index_t n, const T* x /*[n]*/, int threads) {
  const index_t blocks = (n + kNormBlock - 1) / kNormBlock;
  std::vector<double> sums(size_t(blocks), 0.0);  // [blocks]
  const int nt = detail::threads_for_work(threads, double(n), detail::kMinElementsPerThread);
  parallel_region(nt, [&](int tid, int nthreads, StepBarrier&) {
    const Range r = split_range(blocks, nthreads, tid, 1);
    for (index_t b = r.begin; b < r.end; ++b) {
      const index_t first = b * kNormBlock;
      sums[size_t(b)] = block_sum_squares(x + first, std::min(kNormBlock, n - first));
    }
  });
  double total = 0.0;
  for (double s : sums) total += s;
  return total;
}

}  // namespace pyrnn
