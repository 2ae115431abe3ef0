// LSTM cell, gate order i, f, g, o:  c' = f*c + i*g,  h' = o*tanh(c').
#pragma once

#include "activations.h"
#include "cell_rows.h"

namespace pyrnn {

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

  static void forward(const ForwardRow<T>& r) {
    const index_t n = r.n;
    for (index_t k = 0; k < n; ++k) {
      const T i = sigmoid(r.px[k] + r.ph[k]);
      const T f = sigmoid(r.px[n + k] + r.ph[n + k]);
      const T g = tanh_(r.px[2 * n + k] + r.ph[2 * n + k]);
      const T o = sigmoid(r.px[3 * n + k] + r.ph[3 * n + k]);
      const T c_prev = r.c[k];
      const T c = f * c_prev + i * g;
      const T h = o * tanh_(c);
      r.c[k] = c;
      r.h_out[k] = h;
      r.y[k] = h;
      if (r.gates) {
        r.gates[k] = i;
        r.gates[r.H + k] = f;
        r.gates[2 * r.H + k] = g;
        r.gates[3 * r.H + k] = o;
        r.aux[k] = c_prev;
      }
    }
  }

  static void backward(const BackwardRow<T>& r) {
    const index_t H = r.H;
    for (index_t k = 0; k < r.n; ++k) {
      const T i = r.gates[k], f = r.gates[H + k], g = r.gates[2 * H + k],
              o = r.gates[3 * H + k];
      const T c_prev = r.aux[k];
      const T tc = tanh_(f * c_prev + i * g);
      const T dh = r.dh[k];
      const T dc = r.dc[k] + dh * o * (T(1) - tc * tc);
      r.dgh[k] = dc * g * i * (T(1) - i);
      r.dgh[H + k] = dc * c_prev * f * (T(1) - f);
      r.dgh[2 * H + k] = dc * i * (T(1) - g * g);
      r.dgh[3 * H + k] = dh * tc * o * (T(1) - o);
      r.dc[k] = dc * f;
      r.dh[k] = T(0);
    }
  }
};

}  // namespace pyrnn
