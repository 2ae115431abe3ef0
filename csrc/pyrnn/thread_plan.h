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
// Down to this much when each thread still gets at least kMinThreadGateRows rows of the
// recurrent weights: A/B, two threads, T=120: LSTM B=12 H=128 inference 3.9 -> 2.6 ms, training
// 13.0 -> 7.7 ms; LSTM B=48 H=64 training 14.7 -> 11.2 ms; with fewer rows per thread the
// product is too thin to repay the barrier (GRU B=64 H=64 training 15.7 -> 21.6 ms, Elman
// B=48 H=128 14.0 -> 16.8 ms).
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
// recurrent weights too big for one core's cache (split, each share stays in its core's L2:
// bench, LSTM H=256 float32 at B=1-4 runs 1.4-1.8x faster on two threads). Smaller steps:
// small_step_threads, where the batch split is not available.
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

// Batch split: with recurrent weights about the size of one core's L2 or smaller (1.25 L2:
// measured on 1 MiB L2 cores), every thread
// owns a block of batch rows across all units instead of a block of units across all rows.
// Rows are independent in time, so the step loop needs no barrier at all, and each thread runs
// the whole (wide) product on its own packed copy of the weights. A/B against the unit split,
// two threads: LSTM inference T=300 B=24 H=150 30.5 -> 13.7 ms, training T=120 B=48 H=64
// 23.5 -> 11.5 ms, GRU inference T=10 B=64 H=150 2.0 -> 0.63 ms (those ran while the second
// core was slow, which the per-step barriers of the unit split feel most); LSTM B=32 H=256
// (1 MiB of weights) 7.5 -> 6.9 ms; at H=512 (4 MiB) the unit split stays ahead (LSTM
// inference B=64 36.5 vs 44.1 ms; all on 1 MiB of L2 per core). Not for the LSTM projection or peepholes (per-unit state
// and gradients shared between rows). With more than one step (packed products) each row
// gets the same arithmetic as with one thread, so the batch split is bitwise equal to one
// thread (tests/test_determinism.py) - except, outside float32 on AVX2, where a thread is
// left with a single row after its panels of 4 (Eigen sums that row on its own path;
// packed_gemm.h sums it like a whole panel in float32 on AVX2). A single step uses the
// weights in place, where Eigen's GEMM takes the batch rows as its left operand: its
// results may differ from one thread's in the last bits.
inline double batch_split_weight_bytes() { return 1.25 * cache_sizes().l2; }
constexpr index_t kMinBatchRowsPerThread = 4;         // one whole GEBP panel of rows
constexpr double kMinBatchFlopsPerThread = 1.0e6;     // per call: repays the parallel region
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
// and enough work in the call to repay its parallel region. A/B, two threads, against one
// (6 rounds, alternating builds): LSTM H=128 inference T=1000 B=1 3.85 -> 2.59 ms, B=2 8.7 ->
// 5.1 ms, B=5 15.2 -> 10.1 ms; GRU H=128 B=2 5.27 -> 3.82 ms, B=4 8.1 -> 5.1 ms; Elman H=256
// B=1 3.86 -> 2.24 ms; LSTM H=64 B=4 3.05 -> 2.55 ms; training T=300 LSTM B=2 H=128 5.90 ->
// 3.66 ms, GRU B=5 11.0 -> 6.9 ms. (Where the batch split is available the rules above
// decide: taking the unit split there instead measured 0.79x with LSTM B=12 H=64.)
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
// or at least 8 rows: GRU B=12 H=200 ran 6-12% slower with 6 rows per thread (A/B, two
// threads), while with 8 or more rows it wins over the unit split's per-step barriers (LSTM
// inference T=200 B=33 H=150 12.3 -> 8.1 ms, B=18 H=128 5.6 -> 2.2 ms; GRU training B=17
// H=200 19.1 -> 13.1 ms; Elman B=21 H=256 5.6 -> 3.2 ms; LSTM training B=25 H=256 25.2 ->
// 20.1 ms).
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
