// Elman RNN cell:  h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh or relu.
#pragma once

#include "activations.h"
#include "cell_rows.h"

namespace pyrnn {

template <typename T, bool Relu>
struct RnnCell {
  static constexpr int G = 1;
  static constexpr bool has_c = false;
  static constexpr bool recurrent_bias = false;
  static constexpr bool separate_dgx = false;

  static void split_bias(const T* b_ih, const T* b_hh, index_t H, T* bx, T* /*bh*/) {
    for (index_t k = 0; k < H; ++k) bx[k] = b_ih[k] + b_hh[k];
  }

  static void forward(const ForwardRow<T>& r) {
    T* a = r.ph;
    for (index_t k = 0; k < r.n; ++k) a[k] += r.px[k];
    if (Relu)
      relu_inplace(a, r.n);
    else
      tanh_inplace(a, r.n);
    std::copy_n(a, r.n, r.h_out);
    std::copy_n(a, r.n, r.y);
    save_gates<T>(a, 1, r);
  }

  static void backward(const BackwardRow<T>& r) {
    for (index_t k = 0; k < r.n; ++k) {
      const T h = r.gates[k];
      // relu'(0) = 0, as in PyTorch.
      const T d = Relu ? (h > T(0) ? r.dh[k] : T(0)) : r.dh[k] * (T(1) - h * h);
      r.dgh[k] = d;
      r.dh[k] = T(0);
    }
  }
};

}  // namespace pyrnn
