// GRU cell, gate order r, z, n, "linear before reset" (PyTorch/cuDNN):
//   n = tanh(W_in x + b_in + r*(W_hn h + b_hn)),  h' = (1-z)*n + z*h.
#pragma once

#include "activations.h"
#include "cell_rows.h"

namespace pyrnn {

template <typename T>
struct GruCell {
  static constexpr int G = 3;
  static constexpr bool has_c = false;
  static constexpr bool recurrent_bias = true;  // b_hn stays inside the reset product
  static constexpr bool separate_dgx = true;    // dL/d(W_in x) != dL/d(W_hn h)

  static void split_bias(const T* b_ih, const T* b_hh, index_t H, T* bx /*[G*H]*/,
                         T* bh /*[G*H]*/) {
    for (index_t k = 0; k < 2 * H; ++k) {
      bx[k] = b_ih[k] + b_hh[k];
      bh[k] = T(0);
    }
    for (index_t k = 2 * H; k < 3 * H; ++k) {
      bx[k] = b_ih[k];
      bh[k] = b_hh[k];
    }
  }

  static void forward(const ForwardRow<T>& r) {
    const index_t n = r.n;
    T* a = r.ph;  // [r | z | n] in place
    for (index_t k = 0; k < 2 * n; ++k) a[k] += r.px[k];
    sigmoid_inplace(a, 2 * n);
    const T *rg = a, *z = a + n;
    T* nn = a + 2 * n;
    for (index_t k = 0; k < n; ++k) {
      const T hn = nn[k] + (r.bh ? r.bh[2 * n + k] : T(0));
      if (r.aux) r.aux[k] = hn;
      nn[k] = r.px[2 * n + k] + rg[k] * hn;
    }
    tanh_inplace(nn, n);
    for (index_t k = 0; k < n; ++k) {
      const T h = (T(1) - z[k]) * nn[k] + z[k] * r.h[k];
      r.h_out[k] = h;
      r.y[k] = h;
    }
    save_gates(a, G, r);
  }

  static void backward(const BackwardRow<T>& r) {
    const index_t H = r.H;
    gate_gradients(r.n, r.gates, r.gates + H, r.gates + 2 * H, r.aux, r.h, r.dh, r.dgx,
                   r.dgx + H, r.dgx + 2 * H, r.dgh, r.dgh + H, r.dgh + 2 * H);
  }

  // One row's pointwise gradients; distinct arrays or gate blocks, restrict so GCC vectorises.
  static void gate_gradients(index_t n, const T* __restrict rg, const T* __restrict z,
                             const T* __restrict nn, const T* __restrict hn,
                             const T* __restrict h, T* __restrict dh, T* __restrict dxr,
                             T* __restrict dxz, T* __restrict dxn, T* __restrict dhr,
                             T* __restrict dhz, T* __restrict dhn) {
    for (index_t k = 0; k < n; ++k) {
      const T dhk = dh[k];
      const T dn = dhk * (T(1) - z[k]) * (T(1) - nn[k] * nn[k]);
      const T dr = dn * hn[k] * rg[k] * (T(1) - rg[k]);
      const T dz = dhk * (h[k] - nn[k]) * z[k] * (T(1) - z[k]);
      dxr[k] = dr;
      dxz[k] = dz;
      dxn[k] = dn;
      dhr[k] = dr;
      dhz[k] = dz;
      dhn[k] = dn * rg[k];
      dh[k] = dhk * z[k];
    }
  }
};

// GRU with the reset applied before the recurrent product (Keras reset_after=False), gates
// r, z, n:  n = tanh(W_in x + b_in + W_hn (r*h) + b_hn),  h' = (1-z)*n + z*h.
// A two-phase cell (recurrent.h): forward_a makes r, z and r*h; after the driver's second
// recurrent GEMM (W_hn (r*h) into the n block) forward finishes the step. Backward: backward
// gives the z and n gradients and the direct dh; backward_b, given dL/d(r*h), the r gradient.
template <typename T>
struct GruResetBeforeCell {
  static constexpr int G = 3;
  static constexpr bool has_c = false;
  static constexpr bool recurrent_bias = false;  // b_hn is additive here: it folds in
  static constexpr bool separate_dgx = false;
  static constexpr bool two_phase = true;

  static void split_bias(const T* b_ih, const T* b_hh, index_t H, T* bx, T* /*bh*/) {
    for (index_t k = 0; k < G * H; ++k) bx[k] = b_ih[k] + b_hh[k];
  }

  static void forward_a(const ForwardRow<T>& r) {
    const index_t n = r.n;
    T* a = r.ph;  // [r | z] (the n block is filled by the driver afterwards)
    for (index_t k = 0; k < 2 * n; ++k) a[k] += r.px[k];
    sigmoid_inplace(a, 2 * n);
    for (index_t k = 0; k < n; ++k) r.rh[k] = a[k] * r.h[k];
    if (r.aux) std::copy_n(r.rh, n, r.aux);
  }

  static void forward(const ForwardRow<T>& r) {
    const index_t n = r.n;
    T* a = r.ph;
    const T* z = a + n;
    T* nn = a + 2 * n;
    for (index_t k = 0; k < n; ++k) nn[k] += r.px[2 * n + k];
    tanh_inplace(nn, n);
    for (index_t k = 0; k < n; ++k) {
      const T h = (T(1) - z[k]) * nn[k] + z[k] * r.h[k];
      r.h_out[k] = h;
      r.y[k] = h;
    }
    save_gates(a, G, r);
  }

  // Each gate block through its own restrict pointer: indexed off one pointer (dgh[H + k]),
  // GCC cannot rule out overlap for small H and left the loop scalar.
  static void backward(const BackwardRow<T>& r) {
    const index_t H = r.H;
    gate_gradients(r.n, r.gates + H, r.gates + 2 * H, r.h, r.dh, r.dgh, r.dgh + H, r.dgh + 2 * H);
  }

  static void gate_gradients(index_t n, const T* __restrict z, const T* __restrict nn,
                             const T* __restrict h, T* __restrict dh, T* __restrict dhr,
                             T* __restrict dhz, T* __restrict dhn) {
    for (index_t k = 0; k < n; ++k) {
      const T zk = z[k], nk = nn[k], d = dh[k];
      dhr[k] = T(0);  // set by backward_b
      dhz[k] = d * (h[k] - nk) * zk * (T(1) - zk);
      dhn[k] = d * (T(1) - zk) * (T(1) - nk * nk);
      dh[k] = d * zk;
    }
  }

  static void backward_b(const BackwardRow<T>& r) {
    for (index_t k = 0; k < r.n; ++k) {
      const T rg = r.gates[k];
      r.dgh[k] = r.drh[k] * r.h[k] * rg * (T(1) - rg);
      r.dh[k] += r.drh[k] * rg;
    }
  }
};

}  // namespace pyrnn
