// Elman RNN cell for the CUDA kernels:  h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu.
#pragma once

#include "cell_math.h"

namespace pyrnn {
namespace cuda {

template <typename T, bool Relu>
struct RnnCell {
  static constexpr int G = 1;
  static constexpr bool has_c = false;
  static constexpr bool separate_dgx = false;

  // px, gh: [1][H] projections; b_ih, b_hh: [1][H] or nullptr. gates: saved h' (nullptr in
  // inference); aux unused. Returns h'. relu keeps NaN, as the CPU kernels do.
  PYRNN_HD static T forward(const T* px, const T* gh, const T* b_ih, const T* b_hh, index_t H,
                            T /*h*/, T& /*c*/, T* gates, T* /*aux*/) {
    const T a = preactivation(px, gh, b_ih, b_hh, H, 0);
    const T h = Relu ? (a < T(0) ? T(0) : a) : act_tanh(a);
    if (gates) gates[0] = h;
    return h;
  }

  // gates: saved h'; dh: dL/dh'. relu'(0) = 0, as in PyTorch. Returns 0 (no direct part).
  PYRNN_HD static T backward(const T* gates, index_t /*H*/, T /*h*/, T /*aux*/, T dh,
                             T& /*dc*/, T* dgh, T* dgx) {
    const T h = gates[0];
    const T d = Relu ? (h > T(0) ? dh : T(0)) : dh * (T(1) - h * h);
    dgh[0] = d;
    dgx[0] = d;
    return T(0);
  }
};

}  // namespace cuda
}  // namespace pyrnn
