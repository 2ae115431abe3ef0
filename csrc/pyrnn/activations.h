// Activations over contiguous runs of values, vectorised through Eigen's packet math
// (float: SIMD exp/logistic/tanh; double falls back to accurate scalar code where Eigen has
// no packet version). The cells apply them to whole gate blocks in place.
#pragma once

#include <Eigen/Core>
#include <algorithm>

#include "common.h"

namespace pyrnn {

template <typename T>
using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;

template <typename T>
inline void sigmoid_inplace(T* v /*[n]*/, index_t n) {
  ArrayMap<T> a(v, n);
  a = a.logistic();
}

template <typename T>
inline void tanh_inplace(T* v /*[n]*/, index_t n) {
  ArrayMap<T> a(v, n);
  a = a.tanh();
}

template <typename T>
inline void relu_inplace(T* v /*[n]*/, index_t n) {
  ArrayMap<T> a(v, n);
  a = a.max(T(0));
}

}  // namespace pyrnn
