// The CUDA forward/backward driver, shared by every cell (DESIGN.md "The kernel algorithm"):
// one input-projection GEMM over all T*B rows, then per step a recurrent GEMM and one fused
// pointwise kernel; backward per step a fused pointwise gradient kernel and a GEMM, then the big
// weight GEMMs and the bias column sums.
//
// It is written against an execution policy `Exec` so that the same code runs on the GPU
// (DeviceExec, device_exec.cuh) and, in the test suite, on the CPU (tests/cuda_host_emulation.cpp)
// against the CPU kernels. Exec provides:
//   alloc<T>(n) -> owner with get() (nullptr when n == 0); zero(p, n); copy(dst, src, n);
//   fill(p, value, n); gemm(...) and colsum(...) as in blas.h; forward_step<Cell>(StepForward, n);
//   backward_step<Cell>(StepBackward, n); mask_padding(x, lengths, T, B, I, out); finish().
// Plain C++ (no CUDA syntax), so the emulation compiles with the host compiler alone.
#pragma once

#include <utility>

#include "pyrnn/common.h"
#include "step.h"

namespace pyrnn {
namespace cuda {

template <class Exec, typename T, class Cell>
void recurrent_forward(Exec& ex, const ForwardArgs<T>& a) {
  constexpr int G = Cell::G;
  const index_t steps = a.d.T, B = a.d.B, I = a.d.I, H = a.d.H, GH = G * H, TB = steps * B;
  if (B == 0 || H == 0) return;  // every output is empty

  auto P = ex.template alloc<T>(TB * GH);                  // [T, B, G*H] time order
  auto Gh = ex.template alloc<T>(B * GH);                  // [B, G*H]
  auto hbuf = ex.template alloc<T>(2 * B * H);             // [2][B, H] state ping-pong
  auto cbuf = ex.template alloc<T>(Cell::has_c ? B * H : 0);  // [B, H]
  T* h_cur = hbuf.get();
  T* h_nxt = h_cur + B * H;

  // 1. Input projection of every row at once (biases are added in the pointwise kernel).
  ex.gemm(false, true, TB, GH, I, a.x, I, a.w_ih, I, T(0), P.get(), GH);
  if (a.h0)
    ex.copy(h_cur, a.h0, B * H);
  else
    ex.zero(h_cur, B * H);
  if (Cell::has_c) {
    if (a.c0)
      ex.copy(cbuf.get(), a.c0, B * H);
    else
      ex.zero(cbuf.get(), B * H);
  }
  if (a.lengths) ex.zero(a.y, TB * H);  // outputs past each row's length are zero

  // 2. Per step: recurrent GEMM, then the fused pointwise update (and the training saves).
  StepForward<T> p{0,      steps,  B,         H,        a.lengths, a.reverse,
                   P.get(), Gh.get(), a.b_ih, a.b_hh,  nullptr,   cbuf.get(),
                   nullptr, a.y,    a.gates,   a.h_prev, a.aux};
  for (index_t s = 0; s < steps; ++s) {
    ex.gemm(false, true, B, GH, H, h_cur, H, a.w_hh, H, T(0), Gh.get(), GH);
    p.s = s;
    p.h = h_cur;
    p.h_out = h_nxt;
    ex.template forward_step<Cell>(p, B * H);
    std::swap(h_cur, h_nxt);
  }

  ex.copy(a.h_n, h_cur, B * H);
  if (Cell::has_c && a.c_n) ex.copy(a.c_n, cbuf.get(), B * H);
  ex.finish();
}

template <class Exec, typename T, class Cell>
void recurrent_backward(Exec& ex, const BackwardArgs<T>& a) {
  constexpr int G = Cell::G;
  const index_t steps = a.d.T, B = a.d.B, I = a.d.I, H = a.d.H, GH = G * H, TB = steps * B;

  // dgx is kept in time order; it is dgh itself when that is the same array.
  const bool own_dgx = Cell::separate_dgx || a.reverse;
  auto dgh = ex.template alloc<T>(TB * GH);                   // [T, B, G*H] step order
  auto dgx_buf = ex.template alloc<T>(own_dgx ? TB * GH : 0);  // [T, B, G*H] time order
  T* dgx = own_dgx ? dgx_buf.get() : dgh.get();
  auto dh = ex.template alloc<T>(B * H);                      // [B, H]
  auto dc = ex.template alloc<T>(Cell::has_c ? B * H : 0);    // [B, H]
  if (a.dh_n)
    ex.copy(dh.get(), a.dh_n, B * H);
  else
    ex.zero(dh.get(), B * H);
  if (Cell::has_c) {
    if (a.dc_n)
      ex.copy(dc.get(), a.dc_n, B * H);
    else
      ex.zero(dc.get(), B * H);
  }

  // 1. Reverse time: fused pointwise gate gradients, then dh += dG_s W_hh.
  StepBackward<T> p{0,      steps, B,      H,        a.lengths, a.reverse, a.gates, a.h_prev,
                    a.aux,  a.dy,  dh.get(), dc.get(), dgh.get(), dgx};
  for (index_t s = steps - 1; s >= 0; --s) {
    p.s = s;
    ex.template backward_step<Cell>(p, B * H);
    ex.gemm(false, false, B, H, GH, dgh.get() + s * B * GH, GH, a.w_hh, H, T(1), dh.get(), H);
  }
  ex.copy(a.dh0, dh.get(), B * H);
  if (Cell::has_c && a.dc0) ex.copy(a.dc0, dc.get(), B * H);

  // 2. Weight, bias and input gradients over all T*B rows.
  auto x_masked = ex.template alloc<T>(a.lengths ? TB * I : 0);  // [T, B, I]
  const T* xs = a.x;
  if (a.lengths) {
    ex.mask_padding(a.x, a.lengths, steps, B, I, x_masked.get());
    xs = x_masked.get();
  }
  ex.gemm(true, false, GH, H, TB, dgh.get(), GH, a.h_prev, H, T(0), a.dw_hh, H);
  ex.gemm(true, false, GH, I, TB, dgx, GH, xs, I, T(0), a.dw_ih, I);
  auto ones = ex.template alloc<T>(a.db_ih ? TB : 0);  // [T*B], for the bias column sums
  if (a.db_ih) {
    ex.fill(ones.get(), T(1), TB);
    ex.colsum(TB, GH, dgx, ones.get(), a.db_ih);
    ex.colsum(TB, GH, dgh.get(), ones.get(), a.db_hh);
  }
  ex.gemm(false, false, TB, I, GH, dgx, GH, a.w_ih, I, T(0), a.dx, I);
  ex.finish();
}

}  // namespace cuda
}  // namespace pyrnn
