// Entry points of one instruction-set build (compiled once per ISA into its own library;
// PYRNN_ISA_NS names the build).
#pragma once

#include "adam.h"
#include "common.h"

#ifndef PYRNN_ISA_NS
#error "PYRNN_ISA_NS must name the instruction-set build (set by CMake)"
#endif

#define PYRNN_EXPORT __attribute__((visibility("default")))

namespace pyrnn {
namespace PYRNN_ISA_NS {

template <typename T> void lstm_forward(const ForwardArgs<T>& a);
template <typename T> void lstm_backward(const BackwardArgs<T>& a);
template <typename T> void lstm_variant_forward(CellKind k, const ForwardArgs<T>& a);
template <typename T> void lstm_variant_backward(CellKind k, const BackwardArgs<T>& a);
template <typename T> void gru_forward(const ForwardArgs<T>& a);
template <typename T> void gru_backward(const BackwardArgs<T>& a);
template <typename T> void gru_reset_before_forward(const ForwardArgs<T>& a);
template <typename T> void gru_reset_before_backward(const BackwardArgs<T>& a);
template <typename T> void rnn_forward(bool relu, const ForwardArgs<T>& a);
template <typename T> void rnn_backward(bool relu, const BackwardArgs<T>& a);

// One fused Adam step over n elements (optim.cc).
template <typename T>
void adam(index_t n, T* p, const T* g, T* m, T* v, const AdamStep& s, int threads);

// The sum of squares of n elements in double (optim.cc).
template <typename T>
double sum_squares(index_t n, const T* x, int threads);

// A fully connected layer's products (linear.cc).
template <typename T>
void linear_forward(index_t M, index_t N, index_t K, const T* x, const T* w, const T* b, T* y,
                    int threads);
template <typename T>
void linear_backward(index_t M, index_t N, index_t K, const T* dy, const T* x, const T* w, T* dx,
                     T* dw, T* db, int threads);

// Softmax cross-entropy of logit rows and its gradient (loss.cc).
template <typename T>
void softmax_xent(index_t M, index_t C, const T* x, const std::int64_t* target, T scale, T* grad,
                  double* nll, int threads);

// C = X W^T through the steps' packed product, `reps` times (packed_product.cc).
void packed_product_f32(index_t M, index_t N, index_t K, const float* X, const float* W,
                        float* C, int reps);

// The table the Python module dispatches through.
PYRNN_EXPORT const KernelTable& kernel_table();

}  // namespace PYRNN_ISA_NS
}  // namespace pyrnn
