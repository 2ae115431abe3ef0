// A fully connected layer's products, compiled per instruction set like the kernels.
#include "pyrnn/linear.h"
#include "pyrnn/kernels.h"

namespace pyrnn {
namespace PYRNN_ISA_NS {

template <typename T>
void linear_forward(index_t M, index_t N, index_t K, const T* x, const T* w, const T* b, T* y,
                    int threads) {
  pyrnn::linear_forward(M, N, K, x, w, b, y, threads);
}

template <typename T>
void linear_backward(index_t M, index_t N, index_t K, const T* dy, const T* x, const T* w, T* dx,
                     T* dw, T* db, int threads) {
  pyrnn::linear_backward(M, N, K, dy, x, w, dx, dw, db, threads);
}

template void linear_forward<float>(index_t, index_t, index_t, const float*, const float*,
                                    const float*, float*, int);
template void linear_forward<double>(index_t, index_t, index_t, const double*, const double*,
                                     const double*, double*, int);
template void linear_backward<float>(index_t, index_t, index_t, const float*, const float*,
                                     const float*, float*, float*, float*, int);
template void linear_backward<double>(index_t, index_t, index_t, const double*, const double*,
                                      const double*, double*, double*, double*, int);

}  // namespace PYRNN_ISA_NS
}  // namespace pyrnn
