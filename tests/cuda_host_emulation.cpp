// Test support: runs the CUDA driver (csrc/cuda/recurrent.h), its per-element step code
// (step.h) and its cells on the CPU, through HostExec, a sequential stand-in for DeviceExec with
// a reference column-major GEMM behind the same row-major -> column-major mapping that blas.cu
// hands to cuBLAS (gemm_layout.h). tests/test_cuda_host_emulation.py compiles it with the host
// compiler (no CUDA needed), loads it with ctypes and compares it with the CPU kernels.
//
// What this checks without a GPU: the algorithm, every index (step/time order, reverse, lengths,
// saved-activation layout), the cell math and the GEMM operand mapping. What it cannot check:
// kernel launches, streams, device memory, cuBLAS itself (tests/test_cuda.py does, on a GPU).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <vector>

#include "cuda/gemm_layout.h"
#include "cuda/gru_cell.h"
#include "cuda/lstm_cell.h"
#include "cuda/recurrent.h"
#include "cuda/rnn_cell.h"

namespace pyrnn {
namespace cuda {
namespace {

template <typename T>
struct HostBuffer {
  std::vector<T> v;
  T* get() { return v.empty() ? nullptr : v.data(); }
};

// Column-major C[m, n] = op(A) op(B) + beta C, the reference BLAS definition (C not read when
// beta == 0).
template <typename T>
void colmajor_gemm(const ColMajorGemm<T>& g, T beta, T* C) {
  for (index_t j = 0; j < g.n; ++j)
    for (index_t i = 0; i < g.m; ++i) {
      T acc = T(0);
      for (index_t p = 0; p < g.k; ++p) {
        const T a = g.trans_a ? g.A[p + i * g.lda] : g.A[i + p * g.lda];
        const T b = g.trans_b ? g.B[j + p * g.ldb] : g.B[p + j * g.ldb];
        acc += a * b;
      }
      T& c = C[i + j * g.ldc];
      c = beta == T(0) ? acc : acc + beta * c;
    }
}

struct HostExec {
  template <typename T>
  HostBuffer<T> alloc(index_t n) {  // poisoned: a read of scratch never written shows as NaN
    return HostBuffer<T>{std::vector<T>(size_t(n), std::numeric_limits<T>::quiet_NaN())};
  }
  template <typename T>
  void zero(T* p, index_t n) {
    for (index_t i = 0; i < n; ++i) p[i] = T(0);
  }
  template <typename T>
  void copy(T* dst, const T* src, index_t n) {
    if (n > 0) std::memcpy(dst, src, sizeof(T) * size_t(n));
  }
  template <typename T>
  void fill(T* p, T value, index_t n) {
    for (index_t i = 0; i < n; ++i) p[i] = value;
  }
  // Same contract as Blas::gemm.
  template <typename T>
  void gemm(bool ta, bool tb, index_t m, index_t n, index_t k, const T* A, index_t lda,
            const T* B, index_t ldb, T beta, T* C, index_t ldc) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
      if (beta == T(0)) zero(C, m * n);
      return;
    }
    colmajor_gemm(row_major_gemm(ta, tb, m, n, k, A, lda, B, ldb, ldc), beta, C);
  }
  // Same contract as Blas::colsum: a column-major GEMV y = A x with x = ones.
  template <typename T>
  void colsum(index_t m, index_t n, const T* A, const T* ones, T* y) {
    if (n == 0) return;
    if (m == 0) return zero(y, n);
    const ColMajorGemv g = row_major_colsum(m, n);
    for (index_t i = 0; i < g.rows; ++i) {
      T acc = T(0);
      for (index_t j = 0; j < g.cols; ++j) acc += A[i + j * g.lda] * ones[j];
      y[i] = acc;
    }
  }
  template <class Cell, typename T>
  void forward_step(const StepForward<T>& p, index_t n) {
    for (index_t i = 0; i < n; ++i) forward_step_at<T, Cell>(p, i);
  }
  template <class Cell, typename T>
  void backward_step(const StepBackward<T>& p, index_t n) {
    for (index_t i = 0; i < n; ++i) backward_step_at<T, Cell>(p, i);
  }
  template <typename T>
  void mask_padding(const T* x, const index_t* lengths, index_t steps, index_t B, index_t I,
                    T* out) {
    for (index_t i = 0; i < steps * B * I; ++i) mask_padding_at(x, lengths, steps, B, I, out, i);
  }
  void finish() {}
};

template <typename T>
void forward(int cell, const ForwardArgs<T>& a) {
  HostExec ex;
  switch (cell) {
    case 0: return recurrent_forward<HostExec, T, LstmCell<T>>(ex, a);
    case 1: return recurrent_forward<HostExec, T, GruCell<T>>(ex, a);
    case 2: return recurrent_forward<HostExec, T, RnnCell<T, false>>(ex, a);
    default: return recurrent_forward<HostExec, T, RnnCell<T, true>>(ex, a);
  }
}

template <typename T>
void backward(int cell, const BackwardArgs<T>& a) {
  HostExec ex;
  switch (cell) {
    case 0: return recurrent_backward<HostExec, T, LstmCell<T>>(ex, a);
    case 1: return recurrent_backward<HostExec, T, GruCell<T>>(ex, a);
    case 2: return recurrent_backward<HostExec, T, RnnCell<T, false>>(ex, a);
    default: return recurrent_backward<HostExec, T, RnnCell<T, true>>(ex, a);
  }
}

int report(const std::exception& e, char* err, int cap) {
  std::snprintf(err, size_t(cap), "%s", e.what());
  return 1;
}

}  // namespace
}  // namespace cuda
}  // namespace pyrnn

using pyrnn::index_t;

#define PYRNN_EMU_EXPORT extern "C" __attribute__((visibility("default")))

// Pointers as in ForwardArgs (host memory here); dtype64 selects double, else float.
PYRNN_EMU_EXPORT int pyrnn_emu_forward(int cell, int dtype64, index_t T, index_t B, index_t I,
                                       index_t H, const void* x, const void* w_ih,
                                       const void* w_hh, const void* b_ih, const void* b_hh,
                                       const void* h0, const void* c0, const index_t* lengths,
                                       int reverse, void* y, void* h_n, void* c_n, void* gates,
                                       void* h_prev, void* aux, char* err, int errcap) {
  try {
    auto run = [&](auto zero) {
      using F = decltype(zero);
      pyrnn::ForwardArgs<F> a{};
      a.d = pyrnn::Dims{T, B, I, H};
      a.x = static_cast<const F*>(x);
      a.w_ih = static_cast<const F*>(w_ih);
      a.w_hh = static_cast<const F*>(w_hh);
      a.b_ih = static_cast<const F*>(b_ih);
      a.b_hh = static_cast<const F*>(b_hh);
      a.h0 = static_cast<const F*>(h0);
      a.c0 = static_cast<const F*>(c0);
      a.lengths = lengths;
      a.reverse = reverse != 0;
      a.num_threads = 1;
      a.y = static_cast<F*>(y);
      a.h_n = static_cast<F*>(h_n);
      a.c_n = static_cast<F*>(c_n);
      a.gates = static_cast<F*>(gates);
      a.h_prev = static_cast<F*>(h_prev);
      a.aux = static_cast<F*>(aux);
      pyrnn::cuda::forward(cell, a);
    };
    if (dtype64)
      run(0.0);
    else
      run(0.0f);
    return 0;
  } catch (const std::exception& e) {
    return pyrnn::cuda::report(e, err, errcap);
  }
}

// Pointers as in BackwardArgs (host memory here).
PYRNN_EMU_EXPORT int pyrnn_emu_backward(int cell, int dtype64, index_t T, index_t B, index_t I,
                                        index_t H, const void* x, const void* w_ih,
                                        const void* w_hh, const index_t* lengths, int reverse,
                                        const void* gates, const void* h_prev, const void* aux,
                                        const void* dy, const void* dh_n, const void* dc_n,
                                        void* dx, void* dh0, void* dc0, void* dw_ih, void* dw_hh,
                                        void* db_ih, void* db_hh, char* err, int errcap) {
  try {
    auto run = [&](auto zero) {
      using F = decltype(zero);
      pyrnn::BackwardArgs<F> a{};
      a.d = pyrnn::Dims{T, B, I, H};
      a.x = static_cast<const F*>(x);
      a.w_ih = static_cast<const F*>(w_ih);
      a.w_hh = static_cast<const F*>(w_hh);
      a.lengths = lengths;
      a.reverse = reverse != 0;
      a.num_threads = 1;
      a.gates = static_cast<const F*>(gates);
      a.h_prev = static_cast<const F*>(h_prev);
      a.aux = static_cast<const F*>(aux);
      a.dy = static_cast<const F*>(dy);
      a.dh_n = static_cast<const F*>(dh_n);
      a.dc_n = static_cast<const F*>(dc_n);
      a.dx = static_cast<F*>(dx);
      a.dh0 = static_cast<F*>(dh0);
      a.dc0 = static_cast<F*>(dc0);
      a.dw_ih = static_cast<F*>(dw_ih);
      a.dw_hh = static_cast<F*>(dw_hh);
      a.db_ih = static_cast<F*>(db_ih);
      a.db_hh = static_cast<F*>(db_hh);
      pyrnn::cuda::backward(cell, a);
    };
    if (dtype64)
      run(0.0);
    else
      run(0.0f);
    return 0;
  } catch (const std::exception& e) {
    return pyrnn::cuda::report(e, err, errcap);
  }
}

#ifdef PYRNN_EMU_TABLE
// Developer aid, not used by the test suite: compiled with -DPYRNN_EMU_TABLE as
// libpyrnn_kernels_cuda.so and put beside a CUDA-enabled _core (cmake -DPYRNN_CUDA=ON), this
// stands in for the CUDA library (api.h) with host memory and the same driver, so the bindings,
// device="cuda", layer.to("cuda") and tests/test_cuda.py run end to end without a GPU:
//   c++ -std=c++17 -O1 -shared -fPIC -DPYRNN_EMU_TABLE -Icsrc tests/cuda_host_emulation.cpp
//       -o <package>/pyrnn/libpyrnn_kernels_cuda.so
#include <cstdlib>
#include <stdexcept>

#include "cuda/api.h"

namespace {

using namespace pyrnn;
using namespace pyrnn::cuda;

void emu_info(DeviceInfo* out) noexcept {
  std::memset(out, 0, sizeof(*out));
  out->device_count = 1;
  out->device = 0;
  std::snprintf(out->name, sizeof(out->name), "pyrnn host emulation");
}

void* emu_malloc(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = std::malloc(bytes);
  if (!p) throw std::runtime_error("emulated device: out of memory");
  std::memset(p, 0xFF, bytes);  // NaN in float and double: reads of unwritten memory show
  return p;
}

void emu_free(void* p) noexcept { std::free(p); }

void emu_copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

template <typename T>
void emu_forward(CellKind k, const ForwardArgs<T>& a) {
  forward<T>(int(k), a);
}

template <typename T>
void emu_backward(CellKind k, const BackwardArgs<T>& a) {
  backward<T>(int(k), a);
}

}  // namespace

PYRNN_EMU_EXPORT const CudaTable* pyrnn_cuda_kernel_table() {
  static const CudaTable table{kApiVersion,          "0",
                               &emu_info,            &emu_malloc,
                               &emu_free,            &emu_copy,
                               &emu_copy,            &emu_forward<float>,
                               &emu_forward<double>, &emu_backward<float>,
                               &emu_backward<double>};
  return &table;
}
#endif  // PYRNN_EMU_TABLE
