// pyrnn kernel legend (see DESIGN.md): T steps, B batch, I input features, H hidden units,
// G gates (LSTM 4, GRU 3, RNN 1). Row-major, time-major x[T, B, I]. PyTorch parameter layout.
// This header knows nothing of Python.
#pragma once

#include <cstdint>

namespace pyrnn {

using index_t = std::int64_t;

// LSTM_COUPLED: coupled input-forget gate, gates f, g, o: c' = f*c + (1-f)*g, h' = o*tanh(c').
// LSTM_PEEPHOLE: gates i, f, g, o with diagonal peepholes (Gers & Schmidhuber 2000): i and f see
// c, o sees the new c' (ForwardArgs::peephole).
// GRU_RESET_BEFORE: gates r, z, n with the reset applied before the recurrent product (Keras
// reset_after=False): n = tanh(W_in x + b_in + W_hn (r*h) + b_hn), h' = (1-z)*n + z*h.
enum class CellKind : int {
  LSTM = 0, GRU = 1, RNN_TANH = 2, RNN_RELU = 3, LSTM_COUPLED = 4, LSTM_PEEPHOLE = 5,
  GRU_RESET_BEFORE = 6
};
constexpr int kCellKindCount = 7;

// Cells that save ForwardArgs::aux (every one but the Elman RNN).
inline constexpr bool has_aux(CellKind k) {
  return k != CellKind::RNN_TANH && k != CellKind::RNN_RELU;
}

// The cells torch.nn has a single-step cell for (cell_step.h, the C-API).
inline constexpr bool is_plain_cell(CellKind k) {
  return k == CellKind::LSTM || k == CellKind::GRU || k == CellKind::RNN_TANH ||
         k == CellKind::RNN_RELU;
}

inline constexpr bool has_cell_state(CellKind k) {
  return k == CellKind::LSTM || k == CellKind::LSTM_COUPLED || k == CellKind::LSTM_PEEPHOLE;
}

inline constexpr int gate_count(CellKind k) {
  return k == CellKind::LSTM || k == CellKind::LSTM_PEEPHOLE ? 4
         : k == CellKind::RNN_TANH || k == CellKind::RNN_RELU ? 1
                                                              : 3;
}

struct Dims {
  index_t T, B, I, H;
};

// Step order: at step s (0..T-1) batch row b processes time index t_b(s) = s forward, or
// len_b - 1 - s with reverse; the row is idle (state carried, output zero) once s >= len_b.
// Saved activations and gate gradients are stored in step order, [T, B, ...].
template <typename T>
struct ForwardArgs {
  Dims d;
  const T* x;              // [T, B, I]
  const T* w_ih;           // [G*H, I]
  const T* w_hh;           // [G*H, H]
  const T* b_ih;           // [G*H] or nullptr (no bias)
  const T* b_hh;           // [G*H] or nullptr (no bias)
  const T* h0;             // [B, H] or nullptr (zeros)
  const T* c0;             // [B, H] or nullptr (zeros; LSTM only)
  const index_t* lengths;  // [B], 0 <= len <= T, or nullptr (all T)
  bool reverse;
  int num_threads;         // >= 1, upper bound on OpenMP threads
  T* y;                    // [T, B, H] out
  T* h_n;                  // [B, H] out
  T* c_n;                  // [B, H] out (LSTM only)
  // Training saves (all nullptr in inference), step order:
  T* gates;                // [T, B, G*H] post-activation gates
  T* h_prev;               // [T, B, H] state entering the step
  T* aux;                  // [T, B, H] LSTM: c entering the step; GRU: W_hn h + b_hn;
                           // GRU_RESET_BEFORE: r*h (zero on idle rows); RNN: unused
  const T* peephole;       // [3, H] rows w_ci, w_cf, w_co (LSTM_PEEPHOLE only), else nullptr
  // LSTM projection (torch.nn.LSTM(proj_size=P)): h' = W_hr (o*tanh(c')). When w_hr is set the
  // recurrent state is P wide: w_hh is [G*H, P], and h0, y, h_n, h_prev hold P, not H, columns.
  const T* w_hr;           // [P, H] or nullptr (no projection; LSTM cells only)
  index_t P;               // projection size (>= 1 when w_hr is set)
  T* proj_in;              // [T, B, H] training save: o*tanh(c') before the projection
                           // (zero on idle rows), or nullptr
  // Elements from one (t, b) row of y to the next: 0 means R (y contiguous); larger lets the
  // two directions of a bidirectional layer write their halves of one [T, B, 2R] output
  // (CPU kernels only; the CUDA kernels take contiguous y).
  index_t ldy;
};

template <typename T>
struct BackwardArgs {
  Dims d;
  const T* x;              // [T, B, I]
  const T* w_ih;           // [G*H, I]
  const T* w_hh;           // [G*H, H]
  const index_t* lengths;  // [B] or nullptr
  bool reverse;
  int num_threads;
  const T* gates;          // [T, B, G*H] saved by the training forward
  const T* h_prev;         // [T, B, H]
  const T* aux;            // [T, B, H] (nullptr for RNN)
  const T* dy;             // [T, B, H] upstream gradient of y, or nullptr (zeros)
  const T* dh_n;           // [B, H] or nullptr (zeros)
  const T* dc_n;           // [B, H] or nullptr (zeros; LSTM only)
  T* dx;                   // [T, B, I] out
  T* dh0;                  // [B, H] out
  T* dc0;                  // [B, H] out (LSTM only)
  T* dw_ih;                // [G*H, I] out
  T* dw_hh;                // [G*H, H] out
  T* db_ih;                // [G*H] out, or nullptr (no bias)
  T* db_hh;                // [G*H] out, or nullptr (no bias)
  const T* peephole;       // [3, H] w_ci, w_cf, w_co (LSTM_PEEPHOLE only), else nullptr
  T* dpeephole;            // [3, H] out: dL/d(w_ci, w_cf, w_co) (LSTM_PEEPHOLE only)
  // LSTM projection (see ForwardArgs): with w_hr set, w_hh, h_prev, dy, dh_n, dh0 are P wide.
  const T* w_hr;           // [P, H] or nullptr
  index_t P;
  const T* proj_in;        // [T, B, H] saved by the training forward
  T* dw_hr;                // [P, H] out
};

// One step of a plain cell (torch.nn.LSTMCell / GRUCell / RNNCell), cell_step.h.
template <typename T>
struct CellStepArgs {
  index_t B, I, H;
  // Rows of x, h, c, h_out and c_out may lie apart: row b of x starts at x + b * ldx, and so on
  // (row-major with those row strides, in elements; >= I or H, or anything when B = 1).
  index_t ldx, ldh, ldc, ldh_out, ldc_out;
  const T* x;      // [B, I] (row stride ldx)
  const T* h;      // [B, H] state entering the step (ldh), or nullptr (zeros)
  const T* c;      // [B, H] LSTM cell state (ldc), or nullptr (zeros; LSTM only)
  const T* w_ih;   // [G*H, I]
  const T* w_hh;   // [G*H, H]
  const T* b_ih;   // [G*H] or nullptr (no bias)
  const T* b_hh;   // [G*H] or nullptr (no bias)
  T* h_out;        // [B, H] out (ldh_out); must not overlap x, h or c
  T* c_out;        // [B, H] out (ldc_out; LSTM only); must not overlap x, h or c
  T* work;         // [cell_step_work(B, G, H)] scratch
};

// Batches above this many rows take one GEMM per weight instead of a GEMV per row (builds or
// dtypes without the dot tiles).
constexpr index_t kCellGemvRows = 4;

// Elements of scratch a step needs: px and ph [B, G*H], bx and bh [G*H], zeros [H].
inline index_t cell_step_work(index_t B, int G, index_t H) {
  return 2 * B * G * H + 2 * G * H + H;
}

// One instruction-set build of the kernels. Each build lives in its own shared library with
// hidden visibility, so its Eigen instantiations never mix with another build's.
struct AdamStep;  // adam.h

struct KernelTable {
  const char* isa;
  void (*forward_f32)(CellKind, const ForwardArgs<float>&);
  void (*forward_f64)(CellKind, const ForwardArgs<double>&);
  void (*backward_f32)(CellKind, const BackwardArgs<float>&);
  void (*backward_f64)(CellKind, const BackwardArgs<double>&);
  const char* (*eigen_simd)();
  void (*set_flush_denormals)(bool);  // FTZ/DAZ in this build's kernel threads (default on)
  bool (*flush_denormals)();
  // C[M, N] = X[M, K] W[N, K]^T as a step computes it, `reps` times (for bench/bench_gemm.py).
  void (*packed_product_f32)(index_t M, index_t N, index_t K, const float* X, const float* W,
                             float* C, int reps);
  // One Adam step, in place: param, grad, exp_avg, exp_avg_sq of n elements (adam.h).
  void (*adam_f32)(index_t n, float* p, const float* g, float* m, float* v, const AdamStep& s,
                   int threads);
  void (*adam_f64)(index_t n, double* p, const double* g, double* m, double* v,
                   const AdamStep& s, int threads);
  // The sum of squares of n elements, in double (norms.h).
  double (*sum_squares_f32)(index_t n, const float* x, int threads);
  double (*sum_squares_f64)(index_t n, const double* x, int threads);
  // One step of a plain cell on the calling thread (LSTM, GRU, RNN_TANH, RNN_RELU only).
  void (*cell_step_f32)(CellKind, const CellStepArgs<float>&);
  void (*cell_step_f64)(CellKind, const CellStepArgs<double>&);
  // A fully connected layer's forward and backward on up to `threads` threads (linear.h).
  void (*linear_forward_f32)(index_t M, index_t N, index_t K, const float* x, const float* w,
                             const float* b, float* y, int threads);
  void (*linear_forward_f64)(index_t M, index_t N, index_t K, const double* x, const double* w,
                             const double* b, double* y, int threads);
  void (*linear_backward_f32)(index_t M, index_t N, index_t K, const float* dy, const float* x,
                              const float* w, float* dx, float* dw, float* db, int threads);
  void (*linear_backward_f64)(index_t M, index_t N, index_t K, const double* dy,
                              const double* x, const double* w, double* dx, double* dw,
                              double* db, int threads);
  // Softmax cross-entropy of M rows of C logits against target classes (< 0: not counted):
  // per-row losses in nll, scale * their gradient in grad (softmax_xent.h).
  void (*softmax_xent_f32)(index_t M, index_t C, const float* x, const std::int64_t* target,
                           float scale, float* grad, double* nll, int threads);
  void (*softmax_xent_f64)(index_t M, index_t C, const double* x, const std::int64_t* target,
                           double scale, double* grad, double* nll, int threads);
};

}  // namespace pyrnn
