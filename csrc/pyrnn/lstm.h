// LSTM cells. Standard, gate order i, f, g, o:  c' = f*c + i*g,  h' = o*tanh(c');
// and the coupled and peephole variants below.
#pragma once

#include "activations.h"
#include "cell_rows.h"

namespace pyrnn {

// h' = o * tc (tc = tanh(c'), which may be h_out itself) and y, for one row of n units.
template <typename T>
void write_lstm_output(const ForwardRow<T>& r, const T* o /*[n]*/, const T* tc /*[n]*/) {
  for (index_t k = 0; k < r.n; ++k) {
    r.h_out[k] = tc[k] * o[k];
    r.y[k] = r.h_out[k];
  }
}

// A row's forward after Cell::update_c: tanh(c') in h_out, then Cell::finish.
template <class Cell, typename T>
void finish_row(const ForwardRow<T>& r) {
  std::copy_n(r.c, r.n, r.h_out);
  tanh_inplace(r.h_out, r.n);
  Cell::finish(r, r.h_out);
}

template <typename T>
struct LstmCell {
  static constexpr int G = 4;
  static constexpr bool has_c = true;
  static constexpr bool recurrent_bias = false;  // all of b_hh folds into the input side
  static constexpr bool separate_dgx = false;

  // Split biases into the input-side part (added to x W_ih^T) and recurrent-side part.
  static void split_bias(const T* b_ih, const T* b_hh, index_t H, T* bx /*[G*H]*/,
                         T* /*bh*/) {
    for (index_t k = 0; k < G * H; ++k) bx[k] = b_ih[k] + b_hh[k];
  }

  // forward's activations for several rows of every unit at once (rows G*H apart, in a and px
  // alike): one pass over all of them leaves no partial vector per row and gate, which at small
  // H cost more than the activations. The same per-element operations as forward's, so the
  // results are bitwise those of a row at a time. A caller then runs update_c per row,
  // activate_late_rows, tanh(c') of all rows, and finish per row (forward is those four steps
  // for one row).
  static void activate_rows(const ForwardRows<T>& r) {
    for (index_t k = 0; k < r.rows * G * r.H; ++k) r.a[k] += r.px[k];
    sigmoid_with_tanh_rows(r.a, r.rows, G * r.H, 2 * r.H, 3 * r.H);  // i, f, o; g tanh
  }
  static void activate_late_rows(const ForwardRows<T>&) {}
  static void forward(const ForwardRow<T>& r) {
    const index_t n = r.n;
    T* a = r.ph;  // pre-activations, then activations, in place: [i | f | g | o]
    for (index_t k = 0; k < G * n; ++k) a[k] += r.px[k];
    sigmoid_with_tanh_inplace(a, 4 * n, 2 * n, 3 * n);  // i, f, o sigmoid; g tanh
    update_c(r);
    finish_row<LstmCell>(r);
  }

  // forward after its activations, in two parts, so that a caller with many rows can take
  // tanh(c') of all of them at once in between: update_c saves the gates and c and updates c;
  // finish writes h' = o * tanh(c') (tc, which may be h_out itself) and y.
  static void update_c(const ForwardRow<T>& r) {
    const index_t n = r.n;
    const T *i = r.ph, *f = r.ph + n, *g = r.ph + 2 * n;
    if (r.gates) {
      save_gates(r.ph, G, r);
      std::copy_n(r.c, n, r.aux);
    }
    for (index_t k = 0; k < n; ++k) r.c[k] = f[k] * r.c[k] + i[k] * g[k];
  }
  static void finish(const ForwardRow<T>& r, const T* tc /*[n]*/) {
    write_lstm_output(r, r.ph + 3 * r.n, tc);
  }

  static void backward(const BackwardRow<T>& r) {
    const index_t H = r.H;
    const T *i = r.gates, *f = r.gates + H, *g = r.gates + 2 * H;
    for (index_t k = 0; k < r.n; ++k) r.tmp[k] = f[k] * r.aux[k] + i[k] * g[k];
    tanh_inplace(r.tmp, r.n);
    gate_gradients(r.n, i, f, g, r.gates + 3 * H, r.aux, r.tmp, r.dh, r.dc, r.dgh, r.dgh + H,
                   r.dgh + 2 * H, r.dgh + 3 * H);
  }

  // The pointwise gradients of one row. Every pointer is a distinct array or a distinct gate
  // block of dgh; as restrict parameters (GCC ignores restrict on local pointers) they let the
  // loop vectorise.
  static void gate_gradients(index_t n, const T* __restrict i, const T* __restrict f,
                             const T* __restrict g, const T* __restrict o,
                             const T* __restrict c_prev, const T* __restrict tc,
                             T* __restrict dh, T* __restrict dc, T* __restrict di,
                             T* __restrict df, T* __restrict dg, T* __restrict dout) {
    for (index_t k = 0; k < n; ++k) {
      const T dhk = dh[k];
      const T dck = dc[k] + dhk * o[k] * (T(1) - tc[k] * tc[k]);
      di[k] = dck * g[k] * i[k] * (T(1) - i[k]);
      df[k] = dck * c_prev[k] * f[k] * (T(1) - f[k]);
      dg[k] = dck * i[k] * (T(1) - g[k] * g[k]);
      dout[k] = dhk * tc[k] * o[k] * (T(1) - o[k]);
      dc[k] = dck * f[k];
      dh[k] = T(0);
    }
  }
};


// Coupled input-forget gate LSTM, gate order f, g, o:  c' = f*c + (1-f)*g,  h' = o*tanh(c').
template <typename T>
struct CoupledLstmCell {
  static constexpr int G = 3;
  static constexpr bool has_c = true;
  static constexpr bool recurrent_bias = false;
  static constexpr bool separate_dgx = false;

  static void split_bias(const T* b_ih, const T* b_hh, index_t H, T* bx, T* /*bh*/) {
    for (index_t k = 0; k < G * H; ++k) bx[k] = b_ih[k] + b_hh[k];
  }

  // As LstmCell's (activate_rows, update_c, finish), with f, g, o.
  static void activate_rows(const ForwardRows<T>& r) {
    for (index_t k = 0; k < r.rows * G * r.H; ++k) r.a[k] += r.px[k];
    sigmoid_with_tanh_rows(r.a, r.rows, G * r.H, r.H, 2 * r.H);  // f, o; g tanh
  }
  static void activate_late_rows(const ForwardRows<T>&) {}

  static void forward(const ForwardRow<T>& r) {
    const index_t n = r.n;
    T* a = r.ph;  // [f | g | o]
    for (index_t k = 0; k < G * n; ++k) a[k] += r.px[k];
    sigmoid_with_tanh_inplace(a, 3 * n, n, 2 * n);  // f, o sigmoid; g tanh
    update_c(r);
    finish_row<CoupledLstmCell>(r);
  }

  static void update_c(const ForwardRow<T>& r) {
    const index_t n = r.n;
    const T *f = r.ph, *g = r.ph + n;
    if (r.gates) {
      save_gates(r.ph, G, r);
      std::copy_n(r.c, n, r.aux);
    }
    for (index_t k = 0; k < n; ++k) r.c[k] = f[k] * r.c[k] + (T(1) - f[k]) * g[k];
  }
  static void finish(const ForwardRow<T>& r, const T* tc /*[n]*/) {
    write_lstm_output(r, r.ph + 2 * r.n, tc);
  }

  static void backward(const BackwardRow<T>& r) {
    const index_t H = r.H;
    const T *f = r.gates, *g = r.gates + H;
    for (index_t k = 0; k < r.n; ++k) r.tmp[k] = f[k] * r.aux[k] + (T(1) - f[k]) * g[k];
    tanh_inplace(r.tmp, r.n);
    gate_gradients(r.n, f, g, r.gates + 2 * H, r.aux, r.tmp, r.dh, r.dc, r.dgh, r.dgh + H,
                   r.dgh + 2 * H);
  }

  // One row's pointwise gradients; distinct arrays or gate blocks, restrict so GCC vectorises.
  static void gate_gradients(index_t n, const T* __restrict f, const T* __restrict g,
                             const T* __restrict o, const T* __restrict c_prev,
                             const T* __restrict tc, T* __restrict dh, T* __restrict dc,
                             T* __restrict df, T* __restrict dg, T* __restrict dout) {
    for (index_t k = 0; k < n; ++k) {
      const T dhk = dh[k];
      const T dck = dc[k] + dhk * o[k] * (T(1) - tc[k] * tc[k]);
      df[k] = dck * (c_prev[k] - g[k]) * f[k] * (T(1) - f[k]);
      dg[k] = dck * (T(1) - f[k]) * (T(1) - g[k] * g[k]);
      dout[k] = dhk * tc[k] * o[k] * (T(1) - o[k]);
      dc[k] = dck * f[k];
      dh[k] = T(0);
    }
  }
};

// Peephole LSTM (Gers & Schmidhuber 2000), gate order i, f, g, o, diagonal peepholes
// w_ci, w_cf, w_co (rows of r.peep):
//   i = s(. + w_ci*c), f = s(. + w_cf*c), c' = f*c + i*g, o = s(. + w_co*c'), h' = o*tanh(c').
template <typename T>
struct PeepholeLstmCell {
  static constexpr int G = 4;
  static constexpr bool has_c = true;
  static constexpr bool recurrent_bias = false;
  static constexpr bool separate_dgx = false;

  static void split_bias(const T* b_ih, const T* b_hh, index_t H, T* bx, T* /*bh*/) {
    for (index_t k = 0; k < G * H; ++k) bx[k] = b_ih[k] + b_hh[k];
  }

  static void forward(const ForwardRow<T>& r) {
    const index_t n = r.n, H = r.H;
    const T *wci = r.peep, *wcf = r.peep + H, *wco = r.peep + 2 * H;
    T* a = r.ph;  // [i | f | g | o]
    for (index_t k = 0; k < G * n; ++k) a[k] += r.px[k];
    for (index_t k = 0; k < n; ++k) {
      a[k] += wci[k] * r.c[k];
      a[n + k] += wcf[k] * r.c[k];
    }
    sigmoid_with_tanh_inplace(a, 3 * n, 2 * n, 3 * n);  // i, f sigmoid; g tanh
    T* o = a + 3 * n;
    update_c(r);
    for (index_t k = 0; k < n; ++k) o[k] += wco[k] * r.c[k];
    sigmoid_inplace(o, n);
    finish_row<PeepholeLstmCell>(r);
  }

  // Several rows at once, as LstmCell's: i and f see c, so they are activated with g here
  // (o's pre-activation waits in scratch, its slot activated to no use); o sees c', so
  // activate_late_rows activates it for all rows after update_c.
  static void activate_rows(const ForwardRows<T>& r) {
    const index_t H = r.H, GH = G * H;
    const T *wci = r.peep, *wcf = r.peep + H;
    for (index_t k = 0; k < r.rows * GH; ++k) r.a[k] += r.px[k];
    for (index_t b = 0; b < r.rows; ++b) {
      T* a = r.a + b * GH;
      const T* c = r.c + b * H;
      for (index_t k = 0; k < H; ++k) {
        a[k] += wci[k] * c[k];
        a[H + k] += wcf[k] * c[k];
      }
      std::copy_n(a + 3 * H, H, r.scratch + b * H);
    }
    sigmoid_with_tanh_rows(r.a, r.rows, GH, 2 * H, 3 * H);  // i, f (o's slot unused); g tanh
  }
  static void activate_late_rows(const ForwardRows<T>& r) {
    const index_t H = r.H, GH = G * H;
    const T* wco = r.peep + 2 * H;
    for (index_t b = 0; b < r.rows; ++b)
      for (index_t k = 0; k < H; ++k) r.scratch[b * H + k] += wco[k] * r.c[b * H + k];
    sigmoid_inplace(r.scratch, r.rows * H);
    for (index_t b = 0; b < r.rows; ++b) std::copy_n(r.scratch + b * H, H, r.a + b * GH + 3 * H);
  }

  // As LstmCell's; finish also saves the gates (o is only final after activate_late_rows).
  static void update_c(const ForwardRow<T>& r) {
    const index_t n = r.n;
    const T *i = r.ph, *f = r.ph + n, *g = r.ph + 2 * n;
    if (r.gates) std::copy_n(r.c, n, r.aux);
    for (index_t k = 0; k < n; ++k) r.c[k] = f[k] * r.c[k] + i[k] * g[k];
  }
  static void finish(const ForwardRow<T>& r, const T* tc /*[n]*/) {
    save_gates(r.ph, G, r);
    write_lstm_output(r, r.ph + 3 * r.n, tc);
  }

  static void backward(const BackwardRow<T>& r) {
    const index_t H = r.H;
    const T *i = r.gates, *f = r.gates + H, *g = r.gates + 2 * H;
    for (index_t k = 0; k < r.n; ++k) r.tmp[k] = f[k] * r.aux[k] + i[k] * g[k];
    tanh_inplace(r.tmp, r.n);
    gate_gradients(r.n, i, f, g, r.gates + 3 * H, r.aux, r.tmp, r.peep, r.peep + H,
                   r.peep + 2 * H, r.dh, r.dc, r.dgh, r.dgh + H, r.dgh + 2 * H, r.dgh + 3 * H,
                   r.dpeep, r.dpeep + H, r.dpeep + 2 * H);
  }

  // One row's pointwise gradients, peephole gradients accumulated; distinct arrays or blocks,
  // restrict so GCC vectorises.
  static void gate_gradients(index_t n, const T* __restrict i, const T* __restrict f,
                             const T* __restrict g, const T* __restrict o,
                             const T* __restrict cp, const T* __restrict tc,
                             const T* __restrict wci, const T* __restrict wcf,
                             const T* __restrict wco, T* __restrict dh, T* __restrict dc,
                             T* __restrict di, T* __restrict df, T* __restrict dg,
                             T* __restrict dout, T* __restrict dwci, T* __restrict dwcf,
                             T* __restrict dwco) {
    for (index_t k = 0; k < n; ++k) {
      const T dhk = dh[k];
      const T cn = f[k] * cp[k] + i[k] * g[k];
      const T dpo = dhk * tc[k] * o[k] * (T(1) - o[k]);
      const T dck = dc[k] + dhk * o[k] * (T(1) - tc[k] * tc[k]) + dpo * wco[k];
      const T dpi = dck * g[k] * i[k] * (T(1) - i[k]);
      const T dpf = dck * cp[k] * f[k] * (T(1) - f[k]);
      di[k] = dpi;
      df[k] = dpf;
      dg[k] = dck * i[k] * (T(1) - g[k] * g[k]);
      dout[k] = dpo;
      dwci[k] += dpi * cp[k];
      dwcf[k] += dpf * cp[k];
      dwco[k] += dpo * cn;
      dc[k] = dck * f[k] + dpi * wci[k] + dpf * wcf[k];
      dh[k] = T(0);
    }
  }
};

}  // namespace pyrnn
