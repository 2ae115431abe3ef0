// One step of a cell (torch.nn.LSTMCell / GRUCell / RNNCell) on one thread, for streaming and
// generation: no workspace to build, no threads to wake, scratch supplied by the caller, so a
// step at batch 1 costs its arithmetic plus a few hundred nanoseconds.
#pragma once

#include <Eigen/Core>
#include <algorithm>

#include "common.h"
#include "gemm.h"
#include "gru.h"
#include "lstm.h"
#include "parallel.h"
#include "rnn.h"

namespace pyrnn {

namespace detail {

template <typename T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;

// out[rows, N] = in[rows, K] W[N, K]^T for every row at once. Float on the SIMD builds: the
// dot tiles (dots.h), which read each weight row once for all rows. Otherwise a GEMV per row
// for small batches (Eigen's GEMM packs its operands, which costs more than the product at
// B = 1) and Eigen's GEMM beyond.
template <typename T>
void project(index_t rows, index_t N, index_t K, const T* in /*[rows, K], row stride ld*/,
             index_t ld, const T* w /*[N, K]*/, T* out /*[rows, N]*/) {
#ifdef PYRNN_DOTS
  if constexpr (std::is_same<T, float>::value)
    return gemm_nt_dots(rows, N, K, in, ld, w, K, out, N, false);
#endif
  Eigen::Map<const RowMajor<T>> W(w, N, K);
  if (rows <= kCellGemvRows) {
    for (index_t r = 0; r < rows; ++r)
      Eigen::Map<Vec<T>>(out + r * N, N).noalias() = W * Eigen::Map<const Vec<T>>(in + r * ld, K);
    return;
  }
  Eigen::Map<const RowMajor<T>, 0, Eigen::OuterStride<>> X(in, rows, K, Eigen::OuterStride<>(ld));
  Eigen::Map<RowMajor<T>>(out, rows, N).noalias() = X * W.transpose();
}

template <class Cell, typename T>
void cell_step(const CellStepArgs<T>& a) {
  constexpr int G = Cell::G;
  const index_t B = a.B, I = a.I, H = a.H, GH = G * H;
  T* px = a.work;          // [B, G*H] input projection (+ input-side bias)
  T* ph = px + B * GH;     // [B, G*H] recurrent projection
  T* bx = ph + B * GH;     // [G*H] input-side bias
  T* bh = bx + GH;         // [G*H] recurrent-side bias (GRU's b_hn)
  T* zeros = bh + GH;      // [H] the zero state
  if (!a.h) std::fill_n(zeros, H, T(0));
  if (a.b_ih && a.b_hh) {
    Cell::split_bias(a.b_ih, a.b_hh, H, bx, bh);
  } else {
    std::fill_n(bx, GH, T(0));
    std::fill_n(bh, GH, T(0));
  }
  project(B, GH, I, a.x, a.ldx, a.w_ih, px);
  if (a.h)
    project(B, GH, H, a.h, a.ldh, a.w_hh, ph);
  else
    std::fill_n(ph, B * GH, T(0));
  for (index_t b = 0; b < B; ++b)
    for (index_t k = 0; k < GH; ++k) px[b * GH + k] += bx[k];
  bool activated = false;  // every row's gates at once where the cell can (bitwise the same)
  if constexpr (activates_rows<Cell>::value) {
    if (partial_vectors(H)) {
      Cell::activate_rows(ForwardRows<T>{ph, px, B, H, nullptr, nullptr, nullptr});  // plain cells
      activated = true;
    }
  }
  for (index_t b = 0; b < B; ++b) {
    T* pxb = px + b * GH;
    T* c = nullptr;
    if constexpr (Cell::has_c) {
      c = a.c_out + b * a.ldc_out;  // updated in place by the cell
      if (a.c)
        std::copy_n(a.c + b * a.ldc, H, c);
      else
        std::fill_n(c, H, T(0));
    }
    ForwardRow<T> r{};
    r.n = H;
    r.H = H;
    r.px = pxb;
    r.ph = ph + b * GH;
    r.bh = Cell::recurrent_bias ? bh : nullptr;
    r.h = a.h ? a.h + b * a.ldh : zeros;
    r.c = c;
    r.h_out = a.h_out + b * a.ldh_out;
    r.y = r.h_out;
    if constexpr (activates_rows<Cell>::value) {
      if (activated) {  // the rest of forward for this row
        Cell::update_c(r);
        finish_row<Cell>(r);
        continue;
      }
    }
    Cell::forward(r);
  }
}

}  // namespace detail

// One step of the LSTM, GRU or Elman cell `kind` (the plain cells only: the variants have no
// torch cell to match). Runs on the calling thread with the kernels' subnormal mode.
template <typename T>
void cell_step(CellKind kind, const CellStepArgs<T>& a) {
  DenormalsFlushed mode(flush_denormals_flag().load(std::memory_order_relaxed));
  switch (kind) {
    case CellKind::LSTM: return detail::cell_step<LstmCell<T>>(a);
    case CellKind::GRU: return detail::cell_step<GruCell<T>>(a);
    case CellKind::RNN_TANH: return detail::cell_step<RnnCell<T, false>>(a);
    case CellKind::RNN_RELU: return detail::cell_step<RnnCell<T, true>>(a);
    default: return;  // refused by every caller (bindings, C-API) before it gets here
  }
}

}  // namespace pyrnn
