// Entry points of the CUDA kernels, one pair per cell (lstm.cu, gru.cu, rnn.cu). Every pointer in
// the arguments is a device pointer; see api.h.
#pragma once

#include "pyrnn/common.h"

namespace pyrnn {
namespace cuda {

template <typename T> void lstm_forward(const ForwardArgs<T>& a);
template <typename T> void lstm_backward(const BackwardArgs<T>& a);
template <typename T> void gru_forward(const ForwardArgs<T>& a);
template <typename T> void gru_backward(const BackwardArgs<T>& a);
template <typename T> void rnn_forward(bool relu, const ForwardArgs<T>& a);
template <typename T> void rnn_backward(bool relu, const BackwardArgs<T>& a);

}  // namespace cuda
}  // namespace pyrnn
