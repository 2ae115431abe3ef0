// Dispatch from CellKind to the cell kernels of this instruction-set build.
#include <Eigen/Core>

#include "pyrnn/cache_info.h"
#include "pyrnn/cell_step.h"
#include "pyrnn/kernels.h"
#include "pyrnn/parallel.h"


namespace pyrnn {
namespace PYRNN_ISA_NS {
namespace {

// Registered when the library loads, before any fork that could follow a kernel call.
[[maybe_unused]] const bool kWatchingForFork = watch_for_fork();

template <typename T>
void forward(CellKind k, const ForwardArgs<T>& a) {
  switch (k) {
    case CellKind::LSTM: return lstm_forward(a);
    case CellKind::GRU: return gru_forward(a);
    case CellKind::RNN_TANH: return rnn_forward(false, a);
    case CellKind::RNN_RELU: return rnn_forward(true, a);
    case CellKind::LSTM_COUPLED:
    case CellKind::LSTM_PEEPHOLE: return lstm_variant_forward(k, a);
    case CellKind::GRU_RESET_BEFORE: return gru_reset_before_forward(a);
  }
}

template <typename T>
void backward(CellKind k, const BackwardArgs<T>& a) {
  switch (k) {
    case CellKind::LSTM: return lstm_backward(a);
    case CellKind::GRU: return gru_backward(a);
    case CellKind::RNN_TANH: return rnn_backward(false, a);
    case CellKind::RNN_RELU: return rnn_backward(true, a);
    case CellKind::LSTM_COUPLED:
    case CellKind::LSTM_PEEPHOLE: return lstm_variant_backward(k, a);
    case CellKind::GRU_RESET_BEFORE: return gru_reset_before_backward(a);
  }
}

const char* eigen_simd() {
#if defined(EIGEN_VECTORIZE_AVX512) && defined(EIGEN_VECTORIZE_FMA)
  return "AVX-512, FMA";
#elif defined(EIGEN_VECTORIZE_AVX2) && defined(EIGEN_VECTORIZE_FMA)
  return "AVX2, FMA";
#else
  return Eigen::SimdInstructionSetsInUse();
#endif
}

void set_flush_denormals(bool on) { flush_denormals_flag().store(on); }
bool flush_denormals() { return flush_denormals_flag().load(); }

// Eigen's GEMM blocking, from the machine's caches as the packed products' (packed_gemm.h).
// With AVX-512's 48-row panels its depth block fills all of the L1d it is told of (kc = 232 on
// 48 KiB), so it is told of 3/4 of it. (The AVX2 build's 24-row panels take 84% of a 32 KiB
// L1d: left as Eigen sets it.)
bool eigen_blocking_from_caches() {
#ifdef EIGEN_VECTORIZE_AVX512
  const CacheSizes& c = cache_sizes();
  Eigen::setCpuCacheSizes(std::ptrdiff_t(0.75 * c.l1d), std::ptrdiff_t(c.l2),
                          std::ptrdiff_t(c.l3));
#endif
  return true;
}

}  // namespace

const KernelTable& kernel_table() {
  static const bool blocking_set = eigen_blocking_from_caches();
  (void)blocking_set;
  static const KernelTable table{PYRNN_ISA_NAME,      &forward<float>,  &forward<double>,
                                 &backward<float>,    &backward<double>, &eigen_simd,
                                 &set_flush_denormals, &flush_denormals,
                                 &packed_product_f32, &adam<float>, &adam<double>,
                                 &sum_squares<float>, &sum_squares<double>,
                                 &cell_step<float>,   &cell_step<double>,
                                 &linear_forward<float>, &linear_forward<double>,
                                 &linear_backward<float>, &linear_backward<double>,
                                 &softmax_xent<float>, &softmax_xent<double>};
  return table;
}

}  // namespace PYRNN_ISA_NS
}  // namespace pyrnn
