// The language models' loss (softmax cross-entropy), compiled per instruction set like the
// kernels.
#include "pyrnn/kernels.h"
#include "pyrnn/softmax_xent.h"

namespace pyrnn {
namespace PYRNN_ISA_NS {

template <typename T>
void softmax_xent(index_t M, index_t C, const T* x, const std::int64_t* target, T scale, T* grad,
                  double* nll, int threads) {
  pyrnn::softmax_xent(M, C, x, target, scale, grad, nll, threads);
}

template void softmax_xent<float>(index_t, index_t, const float*, const std::int64_t*, float,
                                  float*, double*, int);
template void softmax_xent<double>(index_t, index_t, const double*, const std::int64_t*, double,
                                   double*, double*, int);

}  // namespace PYRNN_ISA_NS
}  // namespace pyrnn
