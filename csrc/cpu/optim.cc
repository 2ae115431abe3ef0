// The optimizers' fused elementwise updates and the gradient norm, compiled per instruction
// set like the kernels.
#include "pyrnn/adam.h"
#include "pyrnn/kernels.h"
#include "pyrnn/norms.h"

namespace pyrnn {
namespace PYRNN_ISA_NS {

template <typename T>
void adam(index_t n, T* p, const T* g, T* m, T* v, const AdamStep& s, int threads) {
  adam_update(n, p, g, m, v, s, threads);
}

template <typename T>
double sum_squares(index_t n, const T* x, int threads) {
  return pyrnn::sum_squares(n, x, threads);
}

template double sum_squares<float>(index_t, const float*, int);
template double sum_squares<double>(index_t, const double*, int);

template void adam<float>(index_t, float*, const float*, float*, float*, const AdamStep&, int);
template void adam<double>(index_t, double*, const double*, double*, double*, const AdamStep&,
                           int);

}  // namespace PYRNN_ISA_NS
}  // namespace pyrnn
