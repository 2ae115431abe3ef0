// The packed product of the kernels' step, C = X W^T, on its own: W packed once as a call packs
// its weights, then `reps` products as the steps run them. For bench/bench_gemm.py, which
// times it against torch.mm on the same shapes (the kernels' GEMM share of the machine).
#include <algorithm>

#include "pyrnn/kernels.h"
#include "pyrnn/packed_gemm.h"
#include "pyrnn/parallel.h"
#include "pyrnn/workspace.h"

namespace pyrnn {
namespace PYRNN_ISA_NS {

void packed_product_f32(index_t M, index_t N, index_t K, const float* X /*[M, K]*/,
                        const float* W /*[N, K]*/, float* C /*[M, N]*/, int reps) {
  using PW = PackedWeights<float>;
  Workspace ws;  // the kernels' own scratch memory (huge pages for a kept block)
  float *packed, *work;
  ws.request(packed, PW::storage(N, K));  // [N, K] packed
  ws.request(work, PW::scratch(M, K, N));
  ws.allocate();
  DenormalsFlushed mode(flush_denormals_flag().load());
  PW w;
  w.prepare<Eigen::RowMajor>(M > 0 && N > 0, packed, 0, W, K, N, K);
  for (int r = 0; r < reps; ++r) {
    std::fill_n(C, M * N, 0.0f);
    w.multiply_add(M, X, K, C, N, work);
  }
}

}  // namespace PYRNN_ISA_NS
}  // namespace pyrnn
