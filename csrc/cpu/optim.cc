// The optimizers' fused elementwise updates, compiled per instruction set like the kernels.
#include "pyrnn/adam.h"
#include "pyrnn/kernels.h"

namespace pyrnn {
namespace PYRNN_ISA_NS {

template <typename T>
void adam(index_t n, T* p, const T* g, T* m, T* v, const AdamStep& s, int threads) {
  adam_update(n, p, g, m, v, s, threads);
}

template void adam<float>(index_t, float*, const float*, float*, float*, const AdamStep&, int);
template void adam<double>(index_t, double*, const double*, double*, double*, const AdamStep&,
                           int);

}  // namespace PYRNN_ISA_NS
}  // namespace pyrnn
