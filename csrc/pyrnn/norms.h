// The sum of squares of an array in double, on the kernels' threads (pyrnn.clip_grad_norm's
// 2-norm). NumPy's dot would run on OpenBLAS, whose threads spin after each call and take the
// cores from the recurrent kernels that follow, and sums a float32 array in float32.
#pragma once

#include <algorithm>
#include <vector>

#include "common.h"
#include "parallel.h"

namespace pyrnn {

// Elements per block: the array is summed block by block, each block in kNormLanes chains, and
// the block sums in order, so the result does not depend on the thread count.
constexpr index_t kNormBlock = 4096;
constexpr index_t kNormLanes = 16;
constexpr index_t kNormMinPerThread = 65536;  // elements: below that a thread is not repaid

template <typename T>
double block_sum_squares(const T* x /*[n]*/, index_t n) {
  double part[kNormLanes] = {};
  index_t j = 0;
  for (; j + kNormLanes <= n; j += kNormLanes)
    for (index_t q = 0; q < kNormLanes; ++q) part[q] += double(x[j + q]) * double(x[j + q]);
  for (; j < n; ++j) part[0] += double(x[j]) * double(x[j]);
  double s = 0.0;
  for (index_t q = 0; q < kNormLanes; ++q) s += part[q];
  return s;
}

template <typename T>
double sum_squares(index_t n, const T* x /*[n]*/, int threads) {
  const index_t blocks = (n + kNormBlock - 1) / kNormBlock;
  std::vector<double> sums(size_t(blocks), 0.0);  // [blocks]
  const int nt = int(std::max<index_t>(1, std::min<index_t>(threads, n / kNormMinPerThread)));
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
