// The one forward/backward driver shared by every cell (DESIGN.md "The kernel algorithm").
// A Cell supplies G, the pointwise update and its gradient; this file owns threading,
// packing, variable lengths, reverse and the GEMMs.
//
// Threads: each thread owns a block of hidden units [j0, j0+n) across all G gates, so a step is
// one recurrent GEMM on its packed weight rows plus the pointwise update of its own units, and
// one barrier. The input projection is computed in chunks of steps (bounded scratch in inference),
// by each thread for its own columns, so it needs no barrier either. With small recurrent
// weights (batch_threads) each thread owns a block of batch rows across all units instead:
// then no step needs a barrier.
//
// Two-phase cells (Cell::two_phase, the reset-before GRU) need a second recurrent product per
// step on a value that depends on the first one's result (W_hn (r*h)): forward, the GEMM for
// gate blocks 0..G-2, Cell::forward_a (writes r*h of own units), a barrier, the GEMM for the
// last block on r*h, then Cell::forward. Backward mirrors it: Cell::backward (last-block and
// non-reset gradients), a barrier, dL/d(r*h) = dG_n W_hn, Cell::backward_b, a barrier, then
// dh = dG_{0..G-2} W_h{0..G-2}. dW_hh of the last block uses the saved r*h (aux), not h.
//
// Projection (LSTM cells with w_hr): the recurrent state is P wide, h' = W_hr m with
// m = o*tanh(c'). Each thread also owns a block of the P state units. Forward, a step is the
// recurrent GEMM and pointwise update (writing m of own units), a barrier, then own units of
// h' = m W_hr^T. Backward, dL/dm = dh W_hr needs every unit of dh, so a step starts with a
// barrier; dW_hr = sum_t dh_t^T m_t is one GEMM after the loop.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "activations.h"
#include "cell_rows.h"
#include "common.h"
#include "gemm.h"
#include "packed_gemm.h"
#include "workspace.h"
#include "parallel.h"
#include "thread_plan.h"

namespace pyrnn {
namespace detail {

template <class C, class = void>
struct is_two_phase : std::false_type {};
template <class C>
struct is_two_phase<C, std::void_t<decltype(C::two_phase)>>
    : std::integral_constant<bool, C::two_phase> {};


// Input-projection rows per chunk (at least one step). Small enough that a chunk's projections
// are still in L2 when the steps read them. One chunk is one packed product (below).
constexpr index_t kChunkRows = 64;
constexpr index_t kInputRowBlock = 64;  // rows of x per packed input-projection product
// Whether to pack the recurrent weights once per call (PackedWeights::prepare packs) or use them
// in place. Packing copies the weights once, which a single step does not repay. Forward with
// one or two rows runs faster as dot products (gemm_nt's small-M path) than through the packed
// GEBP kernel; from three rows on the packed kernel wins since it pads a partial panel of rows
// (packed_gemm.h). Backward's unpacked product is Eigen's GEMM, which packs on every call, so
// it packs once whenever there is more than one step. Exceptions, float32 on the SIMD builds:
// two rows meet the packed panels (dots::panel_rows), which win once the copy is repaid, by
// enough steps or weights that fit L2; one row stays with dot products except for weights
// streamed from far beyond L2 every step, where one sequential packed stream (on huge pages,
// workspace.h) beats one stream per weight row once enough steps repay the copy.
constexpr index_t kForwardDotRows = 2;
constexpr index_t kPackedTwoRowsMinSteps = 32;
// Weights packed for any number of steps: they fit one core's L2.
inline double packed_two_rows_max_bytes() { return cache_sizes().l2; }
// Weights streamed from far beyond L2 every step (10 MiB on 1 MiB of L2).
inline double packed_large_min_bytes() { return 10.0 * cache_sizes().l2; }
constexpr index_t kPackedLargeMinSteps[3] = {0, 24, 16};  // by rows, with one thread's weights
// AVX-512 build: batches of 3-4 rows whose weights stream from beyond a thread's L2 every step
// anyway run in place as dot tiles, sparing the copy, up to the steps where the copy repays
// itself. (On AMD Zen 4, which runs the AVX2 build, the in-place tiles lost.)
constexpr index_t kInPlaceMaxRows = 4;
constexpr index_t kInPlaceMaxSteps = 64;
inline bool in_place_few_rows(index_t steps, index_t B, double weight_bytes, int threads) {
#if defined(PYRNN_SIMD_F32) && PYRNN_SIMD_F32 == 16
  return B <= kInPlaceMaxRows && steps <= kInPlaceMaxSteps &&
         weight_bytes / std::max(threads, 1) > cache_sizes().l2;
#else
  (void)steps, (void)B, (void)weight_bytes, (void)threads;
  return false;
#endif
}

template <typename T>
inline bool prepack_forward(index_t steps, index_t B, double weight_bytes, int threads) {
  if (steps < 2) return false;
  if (B > kForwardDotRows)  // (in place means dot tiles only in float)
    return !(std::is_same<T, float>::value && in_place_few_rows(steps, B, weight_bytes, threads));
#ifdef PYRNN_DOTS
  if constexpr (std::is_same<T, float>::value) {
    if (B == 0) return false;
    const double large_bytes = packed_large_min_bytes();
    const bool large = weight_bytes >= large_bytes;
    const bool large_per_thread = weight_bytes / std::max(threads, 1) >= large_bytes;
    if (large_per_thread && steps >= kPackedLargeMinSteps[B]) return true;
    return B == 2 ? steps >= kPackedTwoRowsMinSteps || weight_bytes <= packed_two_rows_max_bytes()
                  : steps >= kPackedTwoRowsMinSteps && large;
  }
#endif
  (void)weight_bytes;
  (void)threads;
  return false;
}
inline bool prepack_backward(index_t T) { return T >= 2; }
// The recurrent product of a forward in the axpy form (axpy.h) over a transposed copy of w_hh:
// float, 1-4 rows, one thread holding every unit (one thread, or the batch split), a one-phase
// cell without projection, enough steps to repay the copy, and weights small enough to stay in
// L1/L2 between steps.
constexpr index_t kAxpyMaxRows = 4;
constexpr index_t kAxpyMinSteps = 4;
constexpr index_t kAxpyMaxDepth = 128;  // K = H: beyond it the dot tiles' reductions are cheap
inline double axpy_max_bytes() { return cache_sizes().l2 / 4.0; }
template <typename T>
inline bool use_axpy(index_t steps, index_t B, index_t GH, index_t K, bool whole, bool one_phase) {
#ifdef PYRNN_AXPY
  return std::is_same<T, float>::value && whole && one_phase && B <= kAxpyMaxRows &&
         steps >= kAxpyMinSteps && K <= kAxpyMaxDepth &&
         double(GH) * double(K) * sizeof(T) <= axpy_max_bytes();
#else
  (void)steps, (void)B, (void)GH, (void)K, (void)whole, (void)one_phase;
  return false;
#endif
}
// Backward's per-step products with this many rows or fewer take the weights as a transposed
// row-major copy and run as dot tiles, not packed, while the weights are smaller than one
// core's L2 (both copy the weights once per call); beyond it the packed panels win.
constexpr index_t kBackwardDotRows = 2;
// Rows (steps x batch) per chunk of the weight gradients' transposed gate gradients [G*H, chunk]:
// the T*B rows in equal chunks of at most kWeightGradRows. Each chunk adds into the whole of dW
// (G*H x (R+I)), so fewer, larger chunks read and write it fewer times; a chunk within half of
// L2 is transposed and read back without a trip to L3. Chunks fit L2 when the extra passes over
// dW that this costs stay within twice the traffic of the transposes (chunk >= (R+I)/2).
constexpr index_t kWeightGradRows = 1024;
inline index_t weight_grad_chunk(index_t rows, index_t gate_rows, index_t dw_cols,
                                 index_t elem_bytes) {
  const index_t fits = index_t(cache_sizes().l2 / 2 / double(std::max<index_t>(1, gate_rows) *
                                                             elem_bytes));
  const index_t cap =
      fits >= dw_cols / 2 ? std::clamp<index_t>(fits / 8 * 8, 8, kWeightGradRows) : kWeightGradRows;
  const index_t chunks = std::max<index_t>(1, (rows + cap - 1) / cap);
  return std::max<index_t>(1, std::min(cap, round_up((rows + chunks - 1) / chunks, 8)));
}
// Row stride of the transposed gate gradients [G*H, chunk]: an odd number of 64-byte lines, so
// that the rows a transpose writes together fall in different cache sets (a stride of 4 KiB puts
// them all in one set of L1, and the transpose ran at a third of the speed).
inline index_t weight_grad_ld(index_t chunk) {
  const index_t ld = round_up(chunk, 16);
  return (ld / 16) % 2 ? ld : ld + 16;
}
inline double backward_dot_max_bytes() { return cache_sizes().l2; }

inline index_t row_length(const index_t* lengths, index_t b, index_t T) {
  return lengths ? lengths[b] : T;
}

inline index_t time_of(bool reverse, index_t len, index_t s) { return reverse ? len - 1 - s : s; }

// out[c] = sum over r of m[r*ld + c] for c < cols, rows summed in ascending order.
template <typename T>
void column_sums(const T* m /*[rows, ld]*/, index_t rows, index_t cols, index_t ld,
                 T* out /*[cols]*/) {
  std::fill_n(out, cols, T(0));
  for (index_t r = 0; r < rows; ++r) {
    const T* __restrict row = m + r * ld;
    T* __restrict o = out;
    for (index_t c = 0; c < cols; ++c) o[c] += row[c];
  }
}

// Copy the G gate rows of units u (standard layout: row g*H + j) into block layout
// (row g*n + (j - j0)) at dst, which points at the block's first row.
template <typename T>
void pack_gate_rows(const T* src /*[G*H, cols]*/, index_t cols, index_t H, int G, Range u,
                    T* dst /*[G*n, cols]*/) {
  const index_t n = u.size();
  for (int g = 0; g < G; ++g)
    for (index_t j = 0; j < n; ++j)
      std::memcpy(dst + (g * n + j) * cols, src + (g * H + u.begin + j) * cols,
                  sizeof(T) * size_t(cols));
}

// One thread's rows of gates [g0, g1) of a row-major weight matrix W [G*H, K], for products
// C[M, cols] += X W_rows^T in the thread's block layout. With one thread those rows are
// contiguous and form one product. With several, each gate's block of the thread's units is
// its own product, packed (or read in place) straight from W: no thread first copies its rows
// into block layout, a copy that with weights of many MiB spills the last-level cache.
// All parts of one matrix share one buffer of packed_buffer_size(G*H, K, G*nthreads, ...).
template <typename T, int G>
struct GateRows {
  PackedWeights<T> part[G];  // part q writes columns [q*n, ...) of gate g0's block onwards
  index_t n = 0;             // the thread's units
  int parts = 0;

  void prepare(bool pack, T* buffer, const T* W, index_t K, index_t H, int g0, int g1, Range u,
               int tid, int nthreads, bool dots, bool axpy_form = false) {
    using PW = PackedWeights<T>;
    n = u.size();
    const bool whole = nthreads == 1;  // then u is every unit: rows [g0*H, g1*H) contiguous
#ifdef PYRNN_AXPY
    if constexpr (std::is_same<T, float>::value) {
      if (axpy_form && whole) {  // use_axpy(): the buffer holds axpy::storage of the rows
        parts = 1;
        part[0].prepare_axpy(buffer, W + g0 * H * K, K, (g1 - g0) * H, K);
        return;
      }
    }
#endif
    (void)axpy_form;
    parts = whole ? 1 : g1 - g0;
    for (int q = 0; q < parts; ++q) {
      const int g = g0 + q;
      const index_t first = g * H + u.begin, rows = whole ? (g1 - g0) * n : n;
      part[q].template prepare<Eigen::RowMajor>(
          pack, buffer,
          packed_offset(first, K, g * nthreads + tid, PW::depth_blocks(K), PW::kAlign),
          W + first * K, K, rows, K, dots);
    }
  }

  // C [M, *] points at gate g0's first column of this thread's block; `work` has
  // PackedWeights::scratch(M, K, rows of all parts) elements. X is packed once for all parts.
  void multiply_add(index_t M, const T* X, index_t ldx, T* C, index_t ldc, T* work) const {
    PackedWeights<T>::multiply_add_all(part, parts, M, X, ldx, C, n, ldc, work);
  }
};

template <int G>
index_t gate_rows_buffer(bool pack, index_t H, index_t K, int nthreads, index_t depth_blocks,
                         index_t align) {
  return pack ? packed_buffer_size(G * H, K, G * nthreads, depth_blocks, align) : 0;
}

}  // namespace detail

template <typename T, class Cell>
void recurrent_forward(const ForwardArgs<T>& a) {
  using namespace detail;
  constexpr int G = Cell::G;
  constexpr bool two = is_two_phase<Cell>::value;
  const index_t T_ = a.d.T, B = a.d.B, I = a.d.I, H = a.d.H, GH = G * H;
  if (B == 0 || H == 0) return;  // every output is empty

  const bool train = a.gates != nullptr;
  const bool proj = a.w_hr != nullptr;
  const index_t R = proj ? a.P : H;  // width of the recurrent state h
  const index_t ldy = a.ldy ? a.ldy : R;  // y [T, B, R] with rows ldy apart
  const ThreadPlan plan = thread_plan(a.num_threads, T_, B, I, H, R, G, index_t(sizeof(T)),
                                      !proj && !a.peephole);
  const bool batch = plan.batch;  // threads own batch rows (else units)
  const int nt = plan.threads;
  const bool prepack =
      prepack_forward<T>(T_, B, recurrent_weight_bytes(G, H, R, index_t(sizeof(T))), nt);
  // One thread in training: the recurrent GEMM writes into the saved gates of the step and the
  // cell activates them in place (one thread's block layout is the standard layout), which saves
  // a copy of [B, G*H] per step. So in the batch split, where each thread has every unit.
  const bool gates_in_place = train && (nt == 1 || batch);
  const index_t Tc = std::max<index_t>(1, std::min<index_t>(T_, kChunkRows / B));
  const bool gather = a.reverse;  // step order differs from time order

  using PW = PackedWeights<T>;
  const index_t depth_blocks = PW::depth_blocks(R);
  Workspace ws;
  T *bias_x, *bias_h = nullptr, *bx_pk, *bh_pk = nullptr;
  T *P, *Gh, *hbuf, *cbuf = nullptr, *Xs = nullptr, *whh_gebp, *wih_gebp, *step_work;
  T *rh = nullptr;                         // two-phase: r*h [B, H]
  T *whr_gebp = nullptr, *mbuf = nullptr;  // projection: packed w_hr rows, m [B, H]
  ws.request(bias_x, GH);  // [G*H] input-side bias, standard layout
  ws.request(bx_pk, GH);   // [G*H] block layout
  if (Cell::recurrent_bias) {
    ws.request(bias_h, GH);  // [G*H] recurrent-side bias, standard layout
    ws.request(bh_pk, GH);   // [G*H] block layout
  }
  ws.request(P, Tc * B * GH);                 // [Tc*B, G*H] input projection, block layout
  ws.request(Gh, gates_in_place ? 0 : B * GH);  // [B, G*H] recurrent projection, block layout
  ws.request(hbuf, 2 * B * R);                // [2][B, R] state double buffer
  if (Cell::has_c) ws.request(cbuf, B * H);   // [B, H] cell state
  if (gather) ws.request(Xs, Tc * B * I);     // [Tc*B, I] chunk of x in step order
  // Pack buffers only when packing (prepare() leaves them untouched otherwise). In the batch
  // split every thread packs all the weights into its own copy (in its own L2).
  const int pack_parts = plan.pack_parts(), copies = plan.copies();
  const bool rec_axpy = use_axpy<T>(T_, B, GH, R, nt == 1 || batch, !two && !proj);
  index_t whh_one = gate_rows_buffer<G>(prepack, H, R, pack_parts, depth_blocks, PW::kAlign);
#ifdef PYRNN_AXPY
  if (rec_axpy) whh_one = round_up(axpy::storage(GH, R), PW::kAlign);
#endif
  ws.request(whh_gebp, copies * whh_one);
  // The input projection packs w_ih once (Eigen's GEMM would re-pack it every chunk), unless
  // all of x is one chunk that runs as dot products (use_dots): then w_ih is read in place,
  // which saves the copy and keeps it out of L3 beside w_hh.
  const bool input_dots = use_dots<T>(T_ * B, GH, I);
  const bool pack_input = T_ * B > kChunkRows || !input_dots;
  const index_t wih_one =
      gate_rows_buffer<G>(pack_input, H, I, pack_parts, PW::depth_blocks(I), PW::kAlign);
  ws.request(wih_gebp, copies * wih_one);
  const index_t work_size =
      std::max(PW::scratch(B, std::max(H, R), std::max(GH, R)), PW::scratch(kInputRowBlock, I, GH));
  ws.request(step_work, nt * work_size);
  if (proj) {
    ws.request(whr_gebp,
               prepack ? packed_buffer_size(R, H, nt, PW::depth_blocks(H), PW::kAlign) : 0);
    ws.request(mbuf, B * H);
  }
  if (two) ws.request(rh, B * H);
  T* tcbuf = nullptr;  // [B, H] all-rows path: the cell's scratch, then tanh(c') of every row
  if (activates_rows<Cell>::value && !proj) ws.request(tcbuf, B * H);
  ws.allocate();
  std::fill_n(bias_x, GH, T(0));
  if (bias_h) std::fill_n(bias_h, GH, T(0));
  if (a.b_ih) Cell::split_bias(a.b_ih, a.b_hh, H, bias_x, bias_h);

  parallel_region(nt, [&](int tid, int nthreads, StepBarrier& bar) {
    const Range u = batch ? Range{0, H} : split_range(H, nthreads, tid, kUnitAlign);
    const index_t j0 = u.begin, n = u.size(), col0 = G * j0, gn = G * n;
    const Range hu = proj ? split_range(R, nthreads, tid, kUnitAlign) : u;  // own state units
    const index_t p0 = hu.begin, np = hu.size();
    const Range br = batch ? split_range(B, nthreads, tid, 1) : Range{0, B};  // own batch rows
    const index_t b0 = br.begin, b1 = br.end, nb = br.size();
    const int ptid = batch ? 0 : tid, pnt = batch ? 1 : nthreads;  // packing: own copy or part
    T* whh_buf = whh_gebp + (batch ? tid * whh_one : 0);
    T* wih_buf = wih_gebp + (batch ? tid * wih_one : 0);
    if (!batch || tid == 0) pack_gate_rows(bias_x, 1, H, G, u, bx_pk + col0);
    GateRows<T, G> rec;  // this thread's gate rows of w_hh, packed once for the per-step GEMM
    rec.prepare(prepack && !rec_axpy, whh_buf, a.w_hh, R, H, 0, two ? G - 1 : G, u, ptid, pnt,
                use_dots<T>(B, GH, R), rec_axpy);
    PW rec_proj;  // projection: this thread's state rows of w_hr
    if (proj)
      rec_proj.template prepare<Eigen::RowMajor>(
          prepack, whr_gebp, packed_offset(p0, H, tid, PW::depth_blocks(H), PW::kAlign),
          a.w_hr + p0 * H, H, np, H, use_dots<T>(B, R, H));
    GateRows<T, G> rec2;  // two-phase: the last gate block's rows (multiplied by r*h)
    if (two) rec2.prepare(prepack, whh_buf, a.w_hh, H, H, G - 1, G, u, ptid, pnt,
                          use_dots<T>(B, H, H));
    T* work = step_work + tid * work_size;
    GateRows<T, G> inp;  // this thread's gate rows of w_ih, for the input projection
    inp.prepare(pack_input, wih_buf, a.w_ih, I, H, 0, G, u, ptid, pnt, input_dots);
    const T* bh = nullptr;
    if (Cell::recurrent_bias) {
      if (!batch || tid == 0) pack_gate_rows(bias_h, 1, H, G, u, bh_pk + col0);
      bh = bh_pk + col0;
    }

    T* h_cur = hbuf;
    T* h_nxt = hbuf + B * R;
    for (index_t b = b0; b < b1; ++b) {
      for (index_t k = p0; k < p0 + np; ++k) h_cur[b * R + k] = a.h0 ? a.h0[b * R + k] : T(0);
      if (Cell::has_c)
        for (index_t k = j0; k < j0 + n; ++k) cbuf[b * H + k] = a.c0 ? a.c0[b * H + k] : T(0);
      for (index_t t = row_length(a.lengths, b, T_); t < T_; ++t)
        std::fill_n(a.y + (t * B + b) * ldy + p0, np, T(0));
    }
    bar.wait();  // the first recurrent GEMM reads every thread's units of h_cur (and biases)

    for (index_t s = 0; s < T_; ++s) {
      const index_t sc = s % Tc;
      if (sc == 0) {
        const index_t rows = std::min(Tc, T_ - s) * B;
        const T* xsrc = a.x + s * B * I;
        // Unit split: every row of the chunk; batch split: own batch rows of each of its steps.
        auto mine = [&](index_t r) { return !batch || (r % B >= b0 && r % B < b1); };
        if (gather) {
          const Range rr = batch ? Range{0, rows} : split_range(rows, nthreads, tid, 1);
          for (index_t r = rr.begin; r < rr.end; ++r) {
            if (!mine(r)) continue;
            const index_t b = r % B, len = row_length(a.lengths, b, T_), st = s + r / B;
            if (st < len)
              std::memcpy(Xs + r * I, a.x + (time_of(true, len, st) * B + b) * I,
                          sizeof(T) * size_t(I));
            else
              std::fill_n(Xs + r * I, I, T(0));
          }
          if (!batch) bar.wait();
          xsrc = Xs;
        }
        for (index_t r = 0; r < rows; ++r)
          if (mine(r)) std::copy_n(bx_pk + col0, gn, P + r * GH + col0);
        if (batch) {
          for (index_t r = b0; r < rows; r += B)
            inp.multiply_add(nb, xsrc + r * I, I, P + r * GH + col0, GH, work);
        } else {
          for (index_t r = 0; r < rows; r += kInputRowBlock)
            inp.multiply_add(std::min(kInputRowBlock, rows - r), xsrc + r * I, I,
                             P + r * GH + col0, GH, work);
        }
      }
      T* gh = gates_in_place ? a.gates + s * B * GH : Gh;  // [B, G*H] this step's h W_hh^T
      for (index_t b = b0; b < b1; ++b) std::fill_n(gh + b * GH + col0, gn, T(0));
      rec.multiply_add(nb, h_cur + b0 * R, R, gh + b0 * GH + col0, GH, work);
      // A thread with every unit (rows GH apart in P and gh) activates all its rows at once
      // where a row alone would end its gates in partial vectors.
      bool rows_activated = false;
      if constexpr (activates_rows<Cell>::value) {
        if (n == H && !proj && partial_vectors(H)) {
          Cell::activate_rows(ForwardRows<T>{gh + b0 * GH, P + (sc * B + b0) * GH, nb, H,
                                             cbuf + b0 * H, a.peephole, tcbuf + b0 * H});
          rows_activated = true;
        }
      }
      auto make_row = [&](index_t b, index_t len) {
        const size_t save = size_t((s * B + b) * H + j0);
        // With a projection the cell's output is m (own units of mbuf); h' comes after.
        T* out = proj ? mbuf + b * H + j0 : h_nxt + b * H + j0;
        return ForwardRow<T>{n,
                             H,
                             P + (sc * B + b) * GH + col0,
                             gh + b * GH + col0,
                             bh,
                             proj ? nullptr : h_cur + b * H + j0,
                             Cell::has_c ? cbuf + b * H + j0 : nullptr,
                             out,
                             proj ? out : a.y + (time_of(a.reverse, len, s) * B + b) * ldy + j0,
                             train ? a.gates + (s * B + b) * GH + j0 : nullptr,
                             train && a.aux ? a.aux + save : nullptr,
                             a.peephole ? a.peephole + j0 : nullptr,
                             two ? rh + b * H + j0 : nullptr};
      };
      if constexpr (two) {
        for (index_t b = b0; b < b1; ++b) {
          const index_t len = row_length(a.lengths, b, T_);
          if (s >= len)
            std::fill_n(rh + b * H + j0, n, T(0));
          else
            Cell::forward_a(make_row(b, len));
        }
        if (!batch) bar.wait();  // r*h of every unit before the second recurrent GEMM
        rec2.multiply_add(nb, rh + b0 * H, H, gh + b0 * GH + col0 + gn - n, GH, work);
      }
      // Rows entering the cell: an idle row carries its state (saved h_prev zero, so its dW
      // terms vanish) and returns false; an active one saves h_prev and returns true.
      auto enter_row = [&](index_t b, index_t len) {
        const size_t save = size_t((s * B + b) * H + j0);
        const T* h_row = h_cur + b * H + j0;
        if (s >= len) {
          std::copy_n(h_row, n, h_nxt + b * H + j0);
          if (train) std::fill_n(a.h_prev + save, n, T(0));
          if (two && train && a.aux) std::fill_n(a.aux + save, n, T(0));
          return false;
        }
        if (train) std::copy_n(h_row, n, a.h_prev + save);
        return true;
      };
      if (rows_activated) {  // c' of every row, tanh(c') of all at once, then h'
        if constexpr (activates_rows<Cell>::value) {
          for (index_t b = b0; b < b1; ++b) {
            const index_t len = row_length(a.lengths, b, T_);
            if (enter_row(b, len)) Cell::update_c(make_row(b, len));
          }
          Cell::activate_late_rows(ForwardRows<T>{gh + b0 * GH, nullptr, nb, H, cbuf + b0 * H,
                                                  a.peephole, tcbuf + b0 * H});
          std::copy_n(cbuf + b0 * H, nb * H, tcbuf + b0 * H);
          tanh_inplace(tcbuf + b0 * H, nb * H);
          for (index_t b = b0; b < b1; ++b) {
            const index_t len = row_length(a.lengths, b, T_);
            if (s < len) Cell::finish(make_row(b, len), tcbuf + b * H);
          }
        }
      } else {
        for (index_t b = b0; b < b1; ++b) {
          const index_t len = row_length(a.lengths, b, T_);
          if (proj) {  // h and h_prev are handled after the projection below
            const size_t save = size_t((s * B + b) * H + j0);
            if (s >= len) {
              if (train) std::fill_n(a.proj_in + save, n, T(0));
            } else {
              Cell::forward(make_row(b, len));
              if (train) std::copy_n(mbuf + b * H + j0, n, a.proj_in + save);
            }
            continue;
          }
          if (enter_row(b, len)) Cell::forward(make_row(b, len));
        }
      }
      if (proj) {
        bar.wait();  // m of every unit before the projection
        for (index_t b = 0; b < B; ++b) std::fill_n(h_nxt + b * R + p0, np, T(0));
        rec_proj.multiply_add(B, mbuf, H, h_nxt + p0, R, work);
        for (index_t b = 0; b < B; ++b) {
          const index_t len = row_length(a.lengths, b, T_);
          const T* hc = h_cur + b * R + p0;
          T* hn = h_nxt + b * R + p0;
          T* saved = train ? a.h_prev + (s * B + b) * R + p0 : nullptr;
          if (s >= len) {
            std::copy_n(hc, np, hn);
            if (saved) std::fill_n(saved, np, T(0));
            continue;
          }
          if (saved) std::copy_n(hc, np, saved);
          std::copy_n(hn, np, a.y + (time_of(a.reverse, len, s) * B + b) * ldy + p0);
        }
      }
      if (!batch) bar.wait();  // h_nxt complete before anyone's next recurrent GEMM
      std::swap(h_cur, h_nxt);
    }

    for (index_t b = b0; b < b1; ++b) {
      std::copy_n(h_cur + b * R + p0, np, a.h_n + b * R + p0);
      if (Cell::has_c && a.c_n) std::copy_n(cbuf + b * H + j0, n, a.c_n + b * H + j0);
    }
  });
}

template <typename T, class Cell>
void recurrent_backward(const BackwardArgs<T>& a) {
  using namespace detail;
  constexpr int G = Cell::G;
  constexpr bool two = is_two_phase<Cell>::value;
  const index_t T_ = a.d.T, B = a.d.B, I = a.d.I, H = a.d.H, GH = G * H, TB = T_ * B;
  const index_t GHa = two ? GH - H : GH;  // gate rows of the first recurrent product
  const bool proj = a.w_hr != nullptr;
  const index_t R = proj ? a.P : H;  // width of the recurrent state h

  const ThreadPlan plan = thread_plan(a.num_threads, T_, B, I, H, R, G, index_t(sizeof(T)),
                                      !proj && !a.peephole);
  const bool batch = plan.batch;  // threads own batch rows (else units), as in the forward
  const int nt = plan.threads;
  const bool prepack = prepack_backward(T_);
  // Few rows (float, SIMD builds): transposed weights and dot tiles, not packed panels.
  [[maybe_unused]] const bool step_dots =
      prepack && B <= kBackwardDotRows && !batch &&
      recurrent_weight_bytes(G, H, R, index_t(sizeof(T))) < backward_dot_max_bytes();
  const bool remap = a.reverse;                    // dX computed in step order, then scattered
  const bool gather = a.reverse || a.lengths;      // X in step order, zeros on idle rows
  using PW = PackedWeights<T>;
  const index_t depth_blocks = PW::depth_blocks(GH);
  Workspace ws;
  T *dgh, *dgx = nullptr, *dgT, *dh, *dc = nullptr, *tmp, *Xs = nullptr, *dXs = nullptr;
  T *whh_gebp, *step_work, *whh_gebp2 = nullptr, *drh = nullptr;
  T *whr_gebp = nullptr, *dm = nullptr, *dhs = nullptr;  // projection
  ws.request(dgh, TB * GH);                          // [T, B, G*H] step order
  if (Cell::separate_dgx) ws.request(dgx, TB * GH);  // [T, B, G*H] step order
  const index_t wg_chunk = weight_grad_chunk(TB, GH, R + I, index_t(sizeof(T)));
  const index_t wg_ld = weight_grad_ld(wg_chunk);
  ws.request(dgT, GH * wg_ld);                       // [G*H, chunk] (rows wg_ld apart)
  ws.request(dh, B * R);                             // [B, R] carried dL/dh
  if (Cell::has_c) ws.request(dc, B * H);            // [B, H] carried dL/dc
  ws.request(tmp, batch ? nt * H : H);               // [H] pointwise scratch, own units
  if (gather) ws.request(Xs, TB * I);                // [T, B, I] x in step order
  if (remap) ws.request(dXs, TB * I);                // [T, B, I] dx in step order
  const int pack_parts = plan.pack_parts(), copies = plan.copies();
  const index_t whh_one =
      prepack ? packed_buffer_size(R, GH, pack_parts, depth_blocks, PW::kAlign) : 0;
  const index_t whh2_one =
      prepack && two ? packed_buffer_size(H, H, pack_parts, depth_blocks, PW::kAlign) : 0;
  ws.request(whh_gebp, copies * whh_one);
  const index_t work_size = PW::scratch(B, std::max(GH, R), std::max(H, R));
  ws.request(step_work, nt * work_size);
  if (proj) {
    ws.request(whr_gebp,
               prepack ? packed_buffer_size(H, R, nt, PW::depth_blocks(R), PW::kAlign) : 0);
    ws.request(dm, B * H);    // [B, H] dL/dm of the current step
    ws.request(dhs, TB * R);  // [T, B, R] dL/dh of every step (zero on idle rows), for dW_hr
  }
  if (two) {
    ws.request(whh_gebp2, copies * whh2_one);
    ws.request(drh, B * H);  // [B, H] dL/d(r*h)
  }
  ws.allocate();
  if (!Cell::separate_dgx) dgx = dgh;
  const T* xsrc = gather ? Xs : a.x;
  T* dxdst = remap ? dXs : a.dx;
  // dW_hh = dG^T H_prev and dW_ih = dGx^T X for the gate rows gr, over chunks of rows of a
  // transposed copy of the gate gradients (dgT_own [gr, chunk]): given dG itself, Eigen's GEMM
  // packs a row-major operand with rows 4 KiB apart, which misses L1 on every load. Gate rows
  // from `last` on (two-phase cells) multiply r*h, saved in aux, instead of h.
  auto weight_gradients = [&](Range gr, T* dgT_own, index_t last) {
    const index_t mid = std::min(std::max(gr.begin, last), gr.end);
    for (index_t r0 = 0; r0 == 0 || r0 < TB; r0 += wg_chunk) {  // T*B = 0: zeros
      const index_t rc = std::min(wg_chunk, TB - r0);
      const bool acc = r0 > 0;
      transpose_into(gr.size(), rc, dgh + r0 * GH + gr.begin, GH, dgT_own, wg_ld);
      gemm_nn(mid - gr.begin, R, rc, dgT_own, wg_ld, a.h_prev + r0 * R, R,
              a.dw_hh + gr.begin * R, R, acc);
      if (mid < gr.end)
        gemm_nn(gr.end - mid, H, rc, dgT_own + (mid - gr.begin) * wg_ld, wg_ld, a.aux + r0 * H,
                H, a.dw_hh + mid * H, H, acc);
      if (Cell::separate_dgx)
        transpose_into(gr.size(), rc, dgx + r0 * GH + gr.begin, GH, dgT_own, wg_ld);
      gemm_nn(gr.size(), I, rc, dgT_own, wg_ld, xsrc + r0 * I, I, a.dw_ih + gr.begin * I, I,
              acc);
    }
  };

  parallel_region(nt, [&](int tid, int nthreads, StepBarrier& bar) {
    const Range u = batch ? Range{0, H} : split_range(H, nthreads, tid, kUnitAlign);
    const index_t j0 = u.begin, n = u.size();
    const Range hu = proj ? split_range(R, nthreads, tid, kUnitAlign) : u;  // own state units
    const index_t p0 = hu.begin, np = hu.size();
    const Range br = batch ? split_range(B, nthreads, tid, 1) : Range{0, B};  // own batch rows
    const index_t b0 = br.begin, b1 = br.end, nb = br.size();
    const int ptid = batch ? 0 : tid;  // packing: own copy (batch split) or own part
    T* tmp_own = batch ? tmp + tid * H : tmp + j0;
    // The per-step products' weights W^T (W column-major at w, ld): packed, transposed for dot
    // tiles, or (a single step) read in place.
    auto prepare = [&](PW& pw, T* buf, index_t off, const T* w, index_t ld, index_t rows,
                       index_t depth) {
#ifdef PYRNN_DOTS
      if constexpr (std::is_same<T, float>::value)
        if (step_dots) return pw.prepare_transposed(buf + off, w, ld, rows, depth);
#endif
      pw.template prepare<Eigen::ColMajor>(prepack, buf, off, w, ld, rows, depth);
    };
    PW rec;  // w_hh[:, own state units]^T, for the per-step GEMM
    prepare(rec, whh_gebp + (batch ? tid * whh_one : 0),
            packed_offset(p0, GH, ptid, depth_blocks, PW::kAlign), a.w_hh + p0, R, np, GHa);
    PW rec_proj;  // projection: w_hr[:, own units]^T
    if (proj)
      prepare(rec_proj, whr_gebp, packed_offset(j0, R, tid, PW::depth_blocks(R), PW::kAlign),
              a.w_hr + j0, H, n, R);
    PW rec2;  // two-phase: w_h{last}[:, own units]^T
    if (two)
      prepare(rec2, whh_gebp2 + (batch ? tid * whh2_one : 0),
              packed_offset(j0, H, ptid, depth_blocks, PW::kAlign), a.w_hh + GHa * H + j0, H, n,
              H);
    T* work = step_work + tid * work_size;
    for (index_t b = b0; b < b1; ++b) {
      for (index_t k = p0; k < p0 + np; ++k) dh[b * R + k] = a.dh_n ? a.dh_n[b * R + k] : T(0);
      if (Cell::has_c)
        for (index_t k = j0; k < j0 + n; ++k) dc[b * H + k] = a.dc_n ? a.dc_n[b * H + k] : T(0);
    }
    // Peephole gradients: each thread accumulates its own (exclusive) units in a fixed order
    // (steps descending, rows ascending), so the sums are deterministic for any thread count.
    if (a.dpeephole)
      for (int q = 0; q < 3; ++q) std::fill_n(a.dpeephole + q * H + j0, n, T(0));

    for (index_t s = T_ - 1; s >= 0; --s) {
      if (proj) {  // dh of own state units gets dy and is saved; then dL/dm = dh W_hr
        for (index_t b = 0; b < B; ++b) {
          const index_t len = row_length(a.lengths, b, T_);
          T* dh_row = dh + b * R + p0;
          T* saved = dhs + (s * B + b) * R + p0;
          if (s >= len) {
            std::fill_n(saved, np, T(0));
            continue;
          }
          if (a.dy) {
            const T* dy_row = a.dy + (time_of(a.reverse, len, s) * B + b) * R + p0;
            for (index_t k = 0; k < np; ++k) dh_row[k] += dy_row[k];
          }
          std::copy_n(dh_row, np, saved);
        }
        bar.wait();  // dL/dm reads every state unit of dh
        for (index_t b = 0; b < B; ++b) std::fill_n(dm + b * H + j0, n, T(0));
        rec_proj.multiply_add(B, dh, R, dm + j0, H, work);
      }
      for (index_t b = b0; b < b1; ++b) {
        const index_t len = row_length(a.lengths, b, T_);
        const size_t g_off = size_t((s * B + b) * GH + j0);
        if (s >= len) {  // idle row: no gate gradient, carried gradients unchanged
          for (int g = 0; g < G; ++g) {
            std::fill_n(dgh + g_off + g * H, n, T(0));
            if (Cell::separate_dgx) std::fill_n(dgx + g_off + g * H, n, T(0));
          }
          continue;
        }
        T* dh_row = proj ? dm + b * H + j0 : dh + b * H + j0;
        if (a.dy && !proj) {
          const T* dy_row = a.dy + (time_of(a.reverse, len, s) * B + b) * H + j0;
          for (index_t k = 0; k < n; ++k) dh_row[k] += dy_row[k];
        }
        const size_t off = size_t((s * B + b) * H + j0);
        const BackwardRow<T> row{n,
                                 H,
                                 a.gates + g_off,
                                 proj ? nullptr : a.h_prev + off,
                                 a.aux ? a.aux + off : nullptr,
                                 dh_row,
                                 Cell::has_c ? dc + b * H + j0 : nullptr,
                                 dgh + g_off,
                                 dgx + g_off,
                                 tmp_own,
                                 a.peephole ? a.peephole + j0 : nullptr,
                                 a.dpeephole ? a.dpeephole + j0 : nullptr,
                                 two ? drh + b * H + j0 : nullptr};
        Cell::backward(row);
      }
      if constexpr (two) {
        if (!batch) bar.wait();  // dL/d(r*h) reads every thread's last-block gradients
        for (index_t b = b0; b < b1; ++b) std::fill_n(drh + b * H + j0, n, T(0));
        rec2.multiply_add(nb, dgh + (s * B + b0) * GH + GHa, GH, drh + b0 * H + j0, H, work);
        for (index_t b = b0; b < b1; ++b) {
          const index_t len = row_length(a.lengths, b, T_);
          if (s >= len) continue;
          const size_t g_off = size_t((s * B + b) * GH + j0);
          const size_t off = size_t((s * B + b) * H + j0);
          Cell::backward_b(BackwardRow<T>{n, H, a.gates + g_off, a.h_prev + off,
                                          a.aux ? a.aux + off : nullptr, dh + b * H + j0,
                                          nullptr, dgh + g_off, dgx + g_off, tmp_own, nullptr,
                                          nullptr, drh + b * H + j0});
        }
      }
      if (!batch) bar.wait();  // the recurrent GEMM reads every thread's gate gradients
      if (proj)  // (the cell cleared dm, not dh): active rows restart from the GEMM's sum
        for (index_t b = 0; b < B; ++b)
          if (s < row_length(a.lengths, b, T_)) std::fill_n(dh + b * R + p0, np, T(0));
      rec.multiply_add(nb, dgh + (s * B + b0) * GH, GH, dh + b0 * R + p0, R, work);
    }
    for (index_t b = b0; b < b1; ++b) {
      std::copy_n(dh + b * R + p0, np, a.dh0 + b * R + p0);
      if (Cell::has_c && a.dc0) std::copy_n(dc + b * H + j0, n, a.dc0 + b * H + j0);
    }

    // Rows of dX: split on whole panels of Eigen's GEMM (mr rows), so that each row takes the
    // same micro-kernel path as with one thread (a single-row path sums in another order).
    const Range rows =
        split_range(TB, nthreads, tid, index_t(Eigen::internal::gebp_traits<T, T>::mr));
    if (gather) {
      for (index_t r = rows.begin; r < rows.end; ++r) {
        const index_t s = r / B, b = r % B, len = row_length(a.lengths, b, T_);
        if (s < len)
          std::memcpy(Xs + r * I, a.x + (time_of(a.reverse, len, s) * B + b) * I,
                      sizeof(T) * size_t(I));
        else
          std::fill_n(Xs + r * I, I, T(0));
      }
    }
    bar.wait();  // all gate gradients and the gathered X are complete

    // Weight and bias gradients: each thread owns a block of gate rows.
    const Range gr = split_range(GH, nthreads, tid, kUnitAlign);
    weight_gradients(gr, dgT + gr.begin * wg_ld, two ? GHa : GH);
    if (proj)  // dW_hr: each thread its own state units (rows of w_hr)
      gemm_tn(np, H, TB, dhs + p0, R, a.proj_in, H, a.dw_hr + p0 * H, H, false);
    if (a.db_ih) {  // column sums over all rows; one sum when dgx is dgh (then db_hh == db_ih)
      column_sums(dgx + gr.begin, TB, gr.size(), GH, a.db_ih + gr.begin);
      if (Cell::separate_dgx)
        column_sums(dgh + gr.begin, TB, gr.size(), GH, a.db_hh + gr.begin);
      else
        std::copy(a.db_ih + gr.begin, a.db_ih + gr.end, a.db_hh + gr.begin);
    }
    // Input gradient: each thread owns a block of rows.
    gemm_nn(rows.size(), I, GH, dgx + rows.begin * GH, GH, a.w_ih, I, dxdst + rows.begin * I, I,
            false);
    if (remap) {
      bar.wait();  // dXs complete
      for (index_t r = rows.begin; r < rows.end; ++r) {  // r indexes time-order output rows
        const index_t t = r / B, b = r % B, len = row_length(a.lengths, b, T_);
        if (t < len)
          std::memcpy(a.dx + r * I, dXs + ((len - 1 - t) * B + b) * I,
                      sizeof(T) * size_t(I));
        else
          std::fill_n(a.dx + r * I, I, T(0));
      }
    }
  });
}

}  // namespace pyrnn
