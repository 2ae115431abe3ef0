// GRU cell for the CUDA kernels, gate order r, z, n, "linear before reset" (PyTorch/cuDNN):
//   n = tanh(W_in x + b_in + r*(W_hn h + b_hn)),  h' = (1-z)*n + z*h.
// One unit of one batch row. Gate pointers ([G][H] blocks) are offset to the unit: gate q at q*H.
#pragma once

#include "cell_math.h"

namespace pyrnn {
namespace cuda {

template <typename T>
struct GruCell {
  static constexpr int G = 3;
  static constexpr bool has_c = false;
  static constexpr bool separate_dgx = true;  // dL/d(W_in x) != dL/d(W_hn h)

  // px: [G][H] x W_ih^T; gh: [G][H] h W_hh^T; b_ih, b_hh: [G][H] or nullptr; h: state entering.
  // gates: [G][H] saved post-activation gates, aux: saved W_hn h + b_hn (nullptr in inference).
  // Returns h'.
  PYRNN_HD static T forward(const T* px, const T* gh, const T* b_ih, const T* b_hh, index_t H,
                            T h, T& /*c*/, T* gates, T* aux) {
    const T r = sigmoid(preactivation(px, gh, b_ih, b_hh, H, 0));
    const T z = sigmoid(preactivation(px, gh, b_ih, b_hh, H, 1));
    const T hn = gh[2 * H] + (b_hh ? b_hh[2 * H] : T(0));
    const T n = act_tanh((px[2 * H] + (b_ih ? b_ih[2 * H] : T(0))) + r * hn);
    if (gates) {
      gates[0] = r;
      gates[H] = z;
      gates[2 * H] = n;
    }
    if (aux) *aux = hn;
    return (T(1) - z) * n + z * h;
  }

  // gates: [G][H] saved; h: saved state entering; aux: saved W_hn h + b_hn; dh: dL/dh'.
  // Writes dgx (x side) and dgh (h side), [G][H], which must not alias. Returns dL/dh direct part.
  PYRNN_HD static T backward(const T* gates, index_t H, T h, T aux, T dh, T& /*dc*/, T* dgh,
                             T* dgx) {
    const T r = gates[0], z = gates[H], n = gates[2 * H];
    const T dn = dh * (T(1) - z) * (T(1) - n * n);
    const T dr = dn * aux * r * (T(1) - r);
    const T dz = dh * (h - n) * z * (T(1) - z);
    dgx[0] = dr;
    dgx[H] = dz;
    dgx[2 * H] = dn;
    dgh[0] = dr;
    dgh[H] = dz;
    dgh[2 * H] = dn * r;
    return dh * z;
  }
};

}  // namespace cuda
}  // namespace pyrnn
