// LSTM cell for the CUDA kernels, gate order i, f, g, o:  c' = f*c + i*g,  h' = o*tanh(c').
// One unit of one batch row. Gate pointers ([G][H] blocks) are offset to the unit: gate q at q*H.
#pragma once

#include "cell_math.h"

namespace pyrnn {
namespace cuda {

template <typename T>
struct LstmCell {
  static constexpr int G = 4;
  static constexpr bool has_c = true;
  static constexpr bool separate_dgx = false;  // dL/d(x side) == dL/d(h side)

  // px: [G][H] x W_ih^T; gh: [G][H] h W_hh^T; b_ih, b_hh: [G][H] or nullptr.
  // c: cell state, updated in place. gates: [G][H] saved post-activation gates, aux: saved c
  // entering the step (both nullptr in inference). Returns h'.
  PYRNN_HD static T forward(const T* px, const T* gh, const T* b_ih, const T* b_hh, index_t H,
                            T /*h*/, T& c, T* gates, T* aux) {
    const T i = sigmoid(preactivation(px, gh, b_ih, b_hh, H, 0));
    const T f = sigmoid(preactivation(px, gh, b_ih, b_hh, H, 1));
    const T g = act_tanh(preactivation(px, gh, b_ih, b_hh, H, 2));
    const T o = sigmoid(preactivation(px, gh, b_ih, b_hh, H, 3));
    if (gates) {
      gates[0] = i;
      gates[H] = f;
      gates[2 * H] = g;
      gates[3 * H] = o;
    }
    if (aux) *aux = c;
    c = f * c + i * g;
    return o * act_tanh(c);
  }

  // gates: [G][H] saved; aux: saved c entering the step; dh: dL/dh' (dy included);
  // dc: in dL/dc', out dL/dc. Writes dL/d(pre-activations) to dgh and dgx ([G][H]; may alias).
  // Returns the direct (non-GEMM) part of dL/dh.
  PYRNN_HD static T backward(const T* gates, index_t H, T /*h*/, T aux, T dh, T& dc, T* dgh,
                             T* dgx) {
    const T i = gates[0], f = gates[H], g = gates[2 * H], o = gates[3 * H];
    const T tc = act_tanh(f * aux + i * g);
    const T dcv = dc + dh * o * (T(1) - tc * tc);
    const T d[G] = {dcv * g * i * (T(1) - i), dcv * aux * f * (T(1) - f),
                    dcv * i * (T(1) - g * g), dh * tc * o * (T(1) - o)};
    for (int q = 0; q < G; ++q) {
      dgh[q * H] = d[q];
      dgx[q * H] = d[q];
    }
    dc = dcv * f;
    return T(0);
  }
};

}  // namespace cuda
}  // namespace pyrnn
