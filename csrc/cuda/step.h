// The fused pointwise work of one step, per element: one (batch row b, hidden unit j) pair does
// all G gates of its unit. A CUDA kernel (device_exec.cuh) runs these over all B*H elements in
// parallel; the host emulation test runs them in a loop. Plain C++ where not compiled as CUDA.
//
// Step order (pyrnn/common.h): at step s, row b processes time t_b(s) = s, or len_b - 1 - s with
// reverse, and is idle once s >= len_b. Saves and dgh are in step order [T, B, ...]; x, y, dy, the
// input projection P and dgx are in time order, so no gather or scatter of x or dx is needed.
// Elements write disjoint locations: no two elements of a step touch the same output.
#pragma once

#include "cell_math.h"

namespace pyrnn {
namespace cuda {

PYRNN_HD index_t row_length(const index_t* lengths, index_t b, index_t steps) {
  return lengths ? lengths[b] : steps;
}

PYRNN_HD index_t time_of(bool reverse, index_t len, index_t s) {
  return reverse ? len - 1 - s : s;
}

template <typename T>
struct StepForward {
  index_t s;               // the step
  index_t steps, B, H;     // T, B, H of the legend
  const index_t* lengths;  // [B], or nullptr (all `steps`)
  bool reverse;
  const T* P;              // [T, B, G*H] x W_ih^T, time order, no bias
  const T* Gh;             // [B, G*H]    h W_hh^T of this step, no bias
  const T* b_ih;           // [G*H] or nullptr
  const T* b_hh;           // [G*H] or nullptr
  const T* h;              // [B, H] state entering the step
  T* c;                    // [B, H] LSTM cell state, updated in place; nullptr for other cells
  T* h_out;                // [B, H] state leaving the step
  T* y;                    // [T, B, H] output, time order
  T* gates;                // [T, B, G*H] saved post-activation gates, step order; or nullptr
  T* h_prev;               // [T, B, H] saved state entering the step, step order; or nullptr
  T* aux;                  // [T, B, H] saved auxiliary value, step order; or nullptr
};

// idx = b*H + j.
template <typename T, class Cell>
PYRNN_HD void forward_step_at(const StepForward<T>& p, index_t idx) {
  const index_t H = p.H, GH = Cell::G * H, b = idx / H, j = idx - b * H;
  const index_t len = row_length(p.lengths, b, p.steps);
  const index_t saved = (p.s * p.B + b) * H + j;  // [T, B, H] step order
  if (p.s >= len) {  // idle row: carry the state; saved h_prev zero so its dW terms vanish
    p.h_out[idx] = p.h[idx];
    if (p.h_prev) p.h_prev[saved] = T(0);
    return;
  }
  const index_t t = time_of(p.reverse, len, p.s);
  const T h = p.h[idx];
  if (p.h_prev) p.h_prev[saved] = h;
  T c = Cell::has_c ? p.c[idx] : T(0);
  const T h_new = Cell::forward(p.P + (t * p.B + b) * GH + j, p.Gh + b * GH + j,
                                p.b_ih ? p.b_ih + j : nullptr, p.b_hh ? p.b_hh + j : nullptr, H,
                                h, c, p.gates ? p.gates + (p.s * p.B + b) * GH + j : nullptr,
                                p.aux ? p.aux + saved : nullptr);
  if (Cell::has_c) p.c[idx] = c;
  p.h_out[idx] = h_new;
  p.y[(t * p.B + b) * H + j] = h_new;
}

template <typename T>
struct StepBackward {
  index_t s;               // the step
  index_t steps, B, H;
  const index_t* lengths;  // [B], or nullptr
  bool reverse;
  const T* gates;          // [T, B, G*H] saved by the training forward, step order
  const T* h_prev;         // [T, B, H] step order
  const T* aux;            // [T, B, H] step order, or nullptr (RNN)
  const T* dy;             // [T, B, H] upstream gradient of y, time order, or nullptr
  T* dh;                   // [B, H] in: dL/dh leaving the step; out: direct part entering it
  T* dc;                   // [B, H] LSTM dL/dc, leaving -> entering; nullptr for other cells
  T* dgh;                  // [T, B, G*H] out: dL/d(recurrent pre-activation), step order
  T* dgx;                  // [T, B, G*H] out: dL/d(input pre-activation), time order; may be
                           // dgh itself when time order is step order and the cell has one
};

template <typename T, class Cell>
PYRNN_HD void backward_step_at(const StepBackward<T>& p, index_t idx) {
  const index_t H = p.H, GH = Cell::G * H, b = idx / H, j = idx - b * H;
  const index_t len = row_length(p.lengths, b, p.steps);
  const index_t row_s = p.s * p.B + b;
  if (p.s >= len) {  // idle row: no gate gradient; carried gradients unchanged
    // Time row s is padding here (s >= len), the one dgx row this step would not otherwise write.
    for (int q = 0; q < Cell::G; ++q) {
      p.dgh[row_s * GH + q * H + j] = T(0);
      if (p.dgx != p.dgh) p.dgx[row_s * GH + q * H + j] = T(0);
    }
    return;
  }
  const index_t row_t = time_of(p.reverse, len, p.s) * p.B + b;
  const T dh = p.dh[idx] + (p.dy ? p.dy[row_t * H + j] : T(0));
  T dc = Cell::has_c ? p.dc[idx] : T(0);
  p.dh[idx] = Cell::backward(p.gates + row_s * GH + j, H, p.h_prev[row_s * H + j],
                             p.aux ? p.aux[row_s * H + j] : T(0), dh, dc,
                             p.dgh + row_s * GH + j, p.dgx + row_t * GH + j);
  if (Cell::has_c) p.dc[idx] = dc;
}

// out[T, B, I] = x with the rows past each length zeroed (so padding, NaN included, never
// reaches dW_ih). idx over T*B*I.
template <typename T>
PYRNN_HD void mask_padding_at(const T* x, const index_t* lengths, index_t steps, index_t B,
                              index_t I, T* out, index_t idx) {
  const index_t row = idx / I, t = row / B, b = row - t * B;
  out[idx] = t < row_length(lengths, b, steps) ? x[idx] : T(0);
}

}  // namespace cuda
}  // namespace pyrnn
