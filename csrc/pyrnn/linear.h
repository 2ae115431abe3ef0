// A fully connected layer's products on the kernels' threads (pyrnn.nn.Linear): y = x W^T + b
// and its gradients. NumPy's own GEMM runs on one BLAS thread in training (its spinning threads
// would take the cores from the recurrent kernels that follow), so the layer's products would
// otherwise leave all but one core idle.
#pragma once

#include <algorithm>
#include <vector>

#include <Eigen/Core>

#include "common.h"
#include "gemm.h"
#include "parallel.h"
#include "thread_plan.h"

namespace pyrnn {

// Threads worth a call of 2*M*N*K multiply-adds, at most `requested` (each repays the parallel
// region as a batch-split call's thread does).
inline int linear_threads(int requested, index_t M, index_t N, index_t K) {
  return detail::threads_for_work(requested, 2.0 * double(M) * double(N) * double(K),
                                  detail::kMinBatchFlopsPerThread);
}

// y[M, N] = x[M, K] w[N, K]^T (+ b[N] on every row when b is given). Rows split on whole panels
// of Eigen's GEMM, so that each row takes the same micro-kernel path on any thread count.
template <typename T>
void linear_forward(index_t M, index_t N, index_t K, const T* x /*[M, K]*/, const T* w /*[N, K]*/,
                    const T* b /*[N] or nullptr*/, T* y /*[M, N]*/, int threads) {
  const int nt = linear_threads(threads, M, N, K);
  const index_t mr = index_t(Eigen::internal::gebp_traits<T, T>::mr);
  parallel_region(nt, [&](int tid, int nthreads, StepBarrier&) {
    const Range r = split_range(M, nthreads, tid, mr);
    T* yr = y + r.begin * N;  // [r.size(), N]
    if (b) {
      for (index_t m = 0; m < r.size(); ++m) std::copy_n(b, N, yr + m * N);
    }
    gemm_nt(r.size(), N, K, x + r.begin * K, K, w, K, yr, N, b != nullptr);
  });
}

// dx[M, K] = dy[M, N] w[N, K]; dw[N, K] += dy^T x; db[N] += column sums of
// dy (when db is given). dx splits on rows, dw and db on output features: no thread reads
// another's results, so the call has no barrier.
template <typename T>
void linear_backward(index_t M, index_t N, index_t K, const T* dy /*[M, N]*/,
                     const T* x /*[M, K]*/, const T* w /*[N, K]*/, T* dx /*[M, K]*/,
                     T* dw /*[N, K]*/, T* db /*[N] or nullptr*/, int threads) {
  const int nt = linear_threads(threads, M, N, K);
  const index_t mr = index_t(Eigen::internal::gebp_traits<T, T>::mr);
  parallel_region(nt, [&](int tid, int nthreads, StepBarrier&) {
    const Range r = split_range(M, nthreads, tid, mr);
    gemm_nn(r.size(), K, N, dy + r.begin * N, N, w, K, dx + r.begin * K, K, false);
    const Range f = split_range(N, nthreads, tid, 1);
    gemm_tn(f.size(), K, M, dy + f.begin, N, x, K, dw + f.begin * K, K, true);
    if (db && f.size() > 0) {  // summed in double: thousands of float rows lose digits
      std::vector<double> sum(size_t(f.size()), 0.0);  // [f.size()]
      for (index_t m = 0; m < M; ++m) {
        const T* row = dy + m * N + f.begin;  // [f.size()]
        for (index_t j = 0; j < f.size(); ++j) sum[size_t(j)] += double(row[j]);
      }
      for (index_t j = 0; j < f.size(); ++j) db[f.begin + j] += T(sum[size_t(j)]);
    }
  });
}

}  // namespace pyrnn
