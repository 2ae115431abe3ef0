// How many threads a forward or backward call runs on, and how they share the work (by hidden
// units or by batch rows): pure arithmetic on the call's sizes, shared by the kernels
// (recurrent.h) and the Python bindings (the layers' wavefront over stacked layers asks whether
// a layer alone would leave cores idle).
#pragma once

#include <algorithm>
#include <cmath>

#include "cache_info.h"
#include "common.h"

namespace pyrnn {
namespace detail {

constexpr index_t kUnitAlign = 8;     // thread unit blocks start on multiples of this
// Below this much recurrent work per thread and step, a barrier costs more than it saves
// (and on a busy machine a descheduled thread stalls the others).
constexpr double kMinStepFlopsPerThread = 1048576.0;
// Down to this much when each thread still gets at least kMinThreadGateRows weight rows: a
// thinner product does not repay the barrier (A/Bs in the commit that set these).
constexpr double kMinStepFlopsPerThreadWide = 700000.0;
constexpr index_t kMinThreadGateRows = 128;
// Recurrent weight bytes per thread that fit a core's L2 with room to spare (half of it).
inline double thread_cache_bytes() { return 0.5 * cache_sizes().l2; }

// Threads that each get at least kUnitAlign hidden units.
inline index_t unit_threads(index_t H) {
  return std::max<index_t>(1, (H + kUnitAlign - 1) / kUnitAlign);
}

// The recurrent product of one step: B rows against G*H weight rows of depth H.
inline double step_flops(index_t B, index_t H, int G) {
  return 2.0 * double(B) * double(G) * double(H) * double(H);
}

// Bytes of the recurrent weights: G*H rows of depth R (R = H without a projection).
inline double recurrent_weight_bytes(int G, index_t H, index_t R, index_t elem_bytes) {
  return double(G) * double(H) * double(R) * double(elem_bytes);
}

// Threads worth a per-step barrier: enough units per thread, and enough work per step or
// recurrent weights too big for one core's cache (split, each share stays in its core's L2).
// Smaller steps: small_step_threads, where the batch split is not available.
inline int step_threads(int requested, index_t B, index_t H, int G, index_t elem_bytes) {
  const index_t by_units = unit_threads(H);
  const double flops = step_flops(B, H, G);
  index_t by_work = std::max<index_t>(1, index_t(flops / kMinStepFlopsPerThread));
  const index_t wide = std::min<index_t>(index_t(flops / kMinStepFlopsPerThreadWide),
                                         index_t(G) * H / kMinThreadGateRows);
  by_work = std::max(by_work, wide);
  const index_t by_cache =
      index_t(std::ceil(recurrent_weight_bytes(G, H, H, elem_bytes) / thread_cache_bytes()));
  return int(std::max<index_t>(
      1, std::min<index_t>({index_t(requested), by_units, std::max(by_work, by_cache)})));
}

// Batch split: with recurrent weights about the size of one core's L2 or smaller, every
// thread owns a block of batch rows across all units instead of a block of units across all
// rows. Rows are independent in time, so the step loop needs no barrier at all, and each thread
// runs the whole (wide) product on its own packed copy of the weights; with weights of several
// L2s the unit split, whose threads each keep a share in their own L2, stays ahead. Not for the
// LSTM projection or peepholes (per-unit state and gradients shared between rows). With more
// than one step (packed products) each row
// gets the same arithmetic as with one thread, so the batch split is bitwise equal to one
// thread (tests/test_determinism.py) - except, outside float32 on AVX2, where a thread is
// left with a single row after its panels of 4 (Eigen sums that row on its own path;
// packed_gemm.h sums it like a whole panel in float32 on AVX2). A single step uses the
// weights in place, where Eigen's GEMM takes the batch rows as its left operand: its
// results may differ from one thread's in the last bits.
inline double batch_split_weight_bytes() { return 1.25 * cache_sizes().l2; }
constexpr index_t kMinBatchRowsPerThread = 4;         // one whole GEBP panel of rows
constexpr double kMinBatchFlopsPerThread = 1.0e6;     // per call: repays the parallel region
// Elements per thread of an elementwise pass or reduction (Adam, the gradient norm): fewer do
// not repay the parallel region.
constexpr double kMinElementsPerThread = 65536.0;

// Threads worth `work` at `per_thread` each, between 1 and `requested`.
inline int threads_for_work(int requested, double work, double per_thread) {
  const index_t by_work = index_t(work / per_thread);
  return int(std::max<index_t>(1, std::min<index_t>(index_t(requested), by_work)));
}
inline int batch_threads(int requested, index_t T, index_t B, index_t I, index_t H, index_t R,
                         int G, index_t elem_bytes) {
  if (requested < 2 || recurrent_weight_bytes(G, H, R, elem_bytes) > batch_split_weight_bytes())
    return 1;
  const double flops = 2.0 * double(T) * double(B) * double(G) * double(H) * double(I + R);
  const index_t by_rows = B / kMinBatchRowsPerThread;
  const index_t by_work = index_t(flops / kMinBatchFlopsPerThread);
  return int(std::max<index_t>(1, std::min<index_t>({index_t(requested), by_rows, by_work})));
}

// Where neither split above is taken (no batch split: fewer than 8 rows, peepholes, a
// projection; steps below the thresholds above), the unit split still pays from this much
// recurrent work per thread and step, with at least kMinThreadGateRows weight rows per thread
// and enough work in the call to repay its parallel region. (Where the batch split is
// available the rules above decide: the unit split loses to it there.)
constexpr double kMinSmallStepFlopsPerThread = 60000.0;
inline int small_step_threads(int requested, index_t T, index_t B, index_t H, int G) {
  const double flops = step_flops(B, H, G);
  const index_t by_work = std::min<index_t>(index_t(flops / kMinSmallStepFlopsPerThread),
                                            index_t(double(T) * flops / kMinBatchFlopsPerThread));
  const index_t by_gate_rows = index_t(G) * H / kMinThreadGateRows;
  return int(std::max<index_t>(
      1, std::min<index_t>({index_t(requested), unit_threads(H), by_work, by_gate_rows})));
}

// Threads for a call and whether they split batch rows (else units). Where the unit split
// would use several threads too, the batch split must give each thread whole panels of 4 rows
// or at least 8 rows: a partial panel of rows per thread loses to the unit split's barriers.
struct ThreadPlan {
  int threads;
  bool batch;
  // Packed weights: the batch split gives every thread a whole copy, the unit split one copy
  // in a part per thread.
  int pack_parts() const { return batch ? 1 : threads; }
  int copies() const { return batch ? threads : 1; }
};
inline ThreadPlan thread_plan(int requested, index_t T, index_t B, index_t I, index_t H,
                              index_t R, int G, index_t elem_bytes, bool batch_allowed) {
  const int by_units = step_threads(requested, B, H, G, elem_bytes);
  const int by_rows =
      batch_allowed ? batch_threads(requested, T, B, I, H, R, G, elem_bytes) : 1;
  const bool rows_ok = B % (kMinBatchRowsPerThread * by_rows) == 0 ||
                       B / by_rows >= 2 * kMinBatchRowsPerThread;
  if (by_rows > 1 && (by_units == 1 || rows_ok)) return {by_rows, true};
  if (by_units > 1 || by_rows > 1) return {by_units, false};
  return {small_step_threads(requested, T, B, H, G), false};
}

}  // namespace detail
}  // namespace pyrnn
