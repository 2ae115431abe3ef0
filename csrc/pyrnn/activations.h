// Scalar activations shared by the cells; written so the compiler can vectorise the loops.
#pragma once

#include <cmath>

namespace pyrnn {

template <typename T>
inline T sigmoid(T v) {
  // exp(-v) overflows to inf for very negative v, giving exactly 0: no NaN.
  return T(1) / (T(1) + std::exp(-v));
}

template <typename T>
inline T tanh_(T v) {
  return std::tanh(v);
}

template <typename T>
inline T relu(T v) {
  return v > T(0) ? v : T(0);
}

}  // namespace pyrnn
