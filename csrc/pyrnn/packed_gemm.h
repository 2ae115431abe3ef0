// The recurrent GEMM of every step multiplies by the same weight matrix. Plain Eigen products
// re-pack that matrix into GEBP panels on every call; here it is packed once per kernel call
// with Eigen's own packing routine and each step only packs the small per-step operand before
// calling Eigen's GEBP micro-kernel.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <type_traits>

#include "axpy.h"
#include "cache_info.h"
#include "common.h"
#include "gemm.h"

namespace pyrnn {

inline index_t round_up(index_t v, index_t m) { return (v + m - 1) / m * m; }

template <typename T>
struct PackedWeights {
  using Traits = Eigen::internal::gebp_traits<T, T>;
  static constexpr index_t kAlign = 16;  // elements; packed blocks start 64-byte aligned

  // The most depth (K) per packed block: Eigen's micro-kernel re-reads one mr-row weight panel
  // of the block for every nr rows of X, so the panel (mr x kc) is kept within 3/4 of L1d
  // (AVX-512 float on 48 KiB: 192; AVX2 float on 32 KiB: 256).
  static index_t max_depth_block() {
    static const index_t v = std::clamp<index_t>(
        index_t(0.75 * cache_sizes().l1d / double(Traits::mr * index_t(sizeof(T)))) / 8 * 8, 64,
        512);
    return v;
  }
  // The depth of K's blocks: K in equal blocks of at most max_depth_block() (a multiple of 8;
  // the last block may be shorter): 256 as 2 x 128, not 192 + 64 and a thin last block.
  static index_t depth_block(index_t K) {
    const index_t kmax = max_depth_block();
    if (K <= kmax) return K;
    const index_t blocks = (K + kmax - 1) / kmax;
    return std::min(kmax, round_up((K + blocks - 1) / blocks, 8));
  }
  static index_t depth_blocks(index_t K) {
    const index_t kc = depth_block(K);
    return kc > 0 ? (K + kc - 1) / kc : 0;
  }

  // Upper bound on the packed size of an N x K matrix, padding included.
  static index_t storage(index_t N, index_t K) {
    return N * K + (depth_blocks(K) + 1) * kAlign;
  }

  // Per-step scratch for an M x K operand times up to N packed rows: the packed operand, and
  // for a partial last panel its zero-padded rows and result (multiply_add).
  static index_t scratch(index_t M, index_t K, index_t N) {
    const index_t kc = depth_block(K), nr = Traits::nr;
    return round_up(kc * M, kAlign) + round_up(kc * nr, kAlign) * 2 + round_up(N * nr, kAlign) +
           kAlign;
  }

  T* data = nullptr;  // packed panels (aligned, caller-owned), or nullptr: W used in place
  index_t N = 0, K = 0;
  const T* raw = nullptr;  // without packing: W itself (a single step does not repay packing)
  index_t raw_ld = 0;
  bool raw_row_major = true;
  bool raw_dots = false;  // in place, row-major: as dot products (gemm_nt_dots), not Eigen's GEMM
  bool raw_axpy = false;  // raw is a transposed copy [K, axpy::padded(N)] (prepare_axpy)

  // Pack W (N x K): element (n, k) at W[n*ld + k] (RowMajor) or W[n + k*ld] (ColMajor).
  template <int Order>
  void pack(T* dst, const T* W, index_t ld, index_t n_rows, index_t depth) {
    using Mapper = Eigen::internal::const_blas_data_mapper<T, index_t, Order>;
    raw = nullptr;
    Eigen::internal::gemm_pack_lhs<T, index_t, Mapper, Traits::mr, Traits::LhsProgress,
                                   typename Traits::LhsPacket4Packing, Order>
        pack_lhs;
    data = dst;
    N = n_rows;
    K = depth;
    if (N == 0) return;
    const Mapper w(W, ld);
    const index_t kb_depth = depth_block(K), group = pack_group_rows(K);
    // A group of rows at a time, read once in memory order into L2 and then packed from there
    // for every depth block. Depth block by depth block over the whole matrix, the packing read
    // each row in short pieces, mr rows apart, which the hardware prefetchers do not follow.
    for (index_t r0 = 0; r0 < N; r0 += group) {
      const index_t rows = std::min(group, N - r0);
      if (Order == Eigen::RowMajor)
        prefetch_lines(W + r0 * ld, rows, K, ld);
      else
        prefetch_lines(W + r0, K, rows, ld);
      T* out = dst;
      for (index_t k = 0; k < K; k += kb_depth) {
        const index_t kc = std::min(kb_depth, K - k);
        pack_lhs(out + r0 * kc, w.getSubMapper(r0, k), kc, rows);  // panels of mr rows
        out += round_up(N * kc, kAlign);
      }
    }
  }

  // Rows packed per group: a multiple of mr whose weights fill at most half of L2.
  static index_t pack_group_rows(index_t K) {
    const index_t mr = Traits::mr;
    const double row_bytes = double(std::max<index_t>(K, 1) * index_t(sizeof(T)));
    return std::max<index_t>(mr, index_t(0.5 * cache_sizes().l2 / row_bytes) / mr * mr);
  }

  // Prefetch `runs` runs of `len` elements, `ld` apart, into L2, in memory order.
  static void prefetch_lines(const T* p, index_t runs, index_t len, index_t ld) {
    constexpr index_t per_line = index_t(64 / sizeof(T));
    for (index_t r = 0; r < runs; ++r) {
      const char* run = reinterpret_cast<const char*>(p + r * ld);
      for (index_t j = 0; j < len; j += per_line)
        __builtin_prefetch(run + j * index_t(sizeof(T)), 0, 2);
    }
  }

  // Pack W into buffer + offset when the weights serve enough steps to repay the copy;
  // otherwise use W in place (buffer may then be empty: it is not touched), row-major W as dot
  // products when `dots` (use_dots for the whole call's shape, so that every thread and thread
  // count computes an element the same way).
  template <int Order>
  void prepare(bool packed, T* buffer, index_t offset, const T* W, index_t ld, index_t n_rows,
               index_t depth, bool dots = false) {
    if (packed) return pack<Order>(buffer + offset, W, ld, n_rows, depth);
    data = nullptr;
    raw = W;
    raw_ld = ld;
    raw_row_major = Order == Eigen::RowMajor;
    raw_dots = dots && raw_row_major;
    raw_axpy = false;
    N = n_rows;
    K = depth;
  }

#ifdef PYRNN_AXPY
  // For a few rows against small weights (axpy.h): copy W (N x K, row-major, ld) transposed
  // into dst (axpy::storage(N, K) elements) and multiply in the axpy form.
  void prepare_axpy(T* dst, const T* W, index_t ld, index_t n_rows, index_t depth) {
    static_assert(std::is_same<T, float>::value, "the axpy form is float only");
    axpy::transpose(n_rows, depth, W, ld, dst);
    prepare<Eigen::RowMajor>(false, nullptr, 0, dst, axpy::padded(n_rows), n_rows, depth);
    raw_axpy = true;
  }
#endif

#ifdef PYRNN_DOTS
  // For products with one or two rows, where the packed kernel pads every row to a panel of
  // nr (float, AVX2 build): copy W (N x K, element (n, k) at W[n + k*ld]) into dst (N*K
  // elements) as a row-major [N, K] matrix and multiply by that in place, as dot tiles.
  void prepare_transposed(T* dst, const T* W, index_t ld, index_t n_rows, index_t depth) {
    static_assert(std::is_same<T, float>::value, "dot tiles are float only");
    dots::transpose(n_rows, depth, W, ld, dst, depth);
    prepare<Eigen::RowMajor>(false, nullptr, 0, dst, depth, n_rows, depth, true);
  }
#endif

  // C[M, N] (row-major, ldc) += X[M, K] (row-major, ldx) * W^T; `work` has scratch(M, K, N)
  // elements.
  void multiply_add(index_t M, const T* X, index_t ldx, T* C, index_t ldc, T* work) const {
    multiply_add_all(this, 1, M, X, ldx, C, 0, ldc, work);
  }

  // The same for `count` matrices (all packed, or all in place) of equal depth K: C + q*c_step
  // += X W[q]^T. Packed, each depth block of X is packed once for all of them (a thread's gate
  // blocks, GateRows); `work` has scratch(M, K, sum of their N) elements.
  static void multiply_add_all(const PackedWeights* w, int count, index_t M, const T* X,
                               index_t ldx, T* C, index_t c_step, index_t ldc, T* work) {
    if (M == 0 || count == 0) return;
    if (w[0].raw || !w[0].data) {
      for (int q = 0; q < count; ++q) w[q].multiply_add_in_place(M, X, ldx, C + q * c_step, ldc);
      return;
    }
    const index_t K = w[0].K;
    if (K == 0) return;
    using RhsMapper = Eigen::internal::const_blas_data_mapper<T, index_t, Eigen::ColMajor>;
    using ResMapper = Eigen::internal::blas_data_mapper<T, index_t, Eigen::ColMajor>;
    Eigen::internal::gemm_pack_rhs<T, index_t, RhsMapper, Traits::nr, Eigen::ColMajor> pack_rhs;
    Eigen::internal::gebp_kernel<T, T, index_t, ResMapper, Traits::mr, Traits::nr, false, false>
        gebp;
    // Eigen's GEBP takes the rows of X in panels of nr and a partial last panel one row at a
    // time, slower per row than a whole panel. The rows left over go (float, AVX2 build)
    // through dots::panel_rows for the weights' whole 24-row panels, and otherwise (the
    // weights' last rows, other builds) into a zero-padded whole panel of X, multiplied into a
    // scratch C^T [N, nr] and added to C; on other builds a single row left over stays with
    // Eigen (one row padded to a panel costs more than it saves). Both add their products to C
    // after every depth block, as GEBP does for whole panels: each element gets the same sums
    // in the same order whichever panel it is in (the batch split's threads have their partial
    // panels at other rows than one thread has).
#ifdef PYRNN_DOTS
    constexpr bool own_rows = std::is_same<T, float>::value;
#else
    constexpr bool own_rows = false;
#endif
    constexpr index_t nr = Traits::nr;
    const index_t kmax = depth_block(K);
    const index_t rem =
        own_rows || M % nr >= std::max<index_t>(nr - 2, 2) ? M % nr : 0, full = M - rem;
    T* packed = work;                                        // [kc, full] packed rows of X
    T* packed_rem = packed + round_up(kmax * full, kAlign);  // [kc, nr] packed padded rows
    T* x_rem = packed_rem + round_up(kmax * nr, kAlign);     // [nr, kc] padded rows of X
    T* c_rem = x_rem + round_up(kmax * nr, kAlign);          // [nr, N] one matrix's products
    // Weight rows that meet the rows left over in panel_rows: the whole mr-row panels.
    auto own_of = [&](const PackedWeights& wq) -> index_t {
      return own_rows ? wq.N / Traits::mr * Traits::mr : 0;
    };
    bool padded = false;  // some weight rows take the rows left over as a padded panel
    for (int q = 0; q < count; ++q) padded = padded || (rem > 0 && w[q].N > own_of(w[q]));
    if (padded) std::fill_n(x_rem, nr * kmax, T(0));
    const RhsMapper x(X, ldx);  // X^T as a K x M column-major matrix
    const RhsMapper xr(x_rem, kmax);
    for (index_t k = 0, kb = 0; k < K; k += kmax, ++kb) {
      const index_t kc = std::min(kmax, K - k);
      if (full) pack_rhs(packed, x.getSubMapper(k, 0), kc, full);
      if (padded) {
        for (index_t r = 0; r < rem; ++r)
          std::copy_n(X + (full + r) * ldx + k, kc, x_rem + r * kmax);
        pack_rhs(packed_rem, xr, kc, nr);
      }
      for (int q = 0; q < count; ++q) {
        const PackedWeights& wq = w[q];
        if (wq.N == 0) continue;
        const T* a = wq.data + kb * round_up(wq.N * kmax, kAlign);  // depth block kb
        // C^T as an N x M column-major matrix
        if (full) gebp(ResMapper(C + q * c_step, ldc), a, packed, wq.N, kc, full, T(1));
        if (!rem) continue;
        T* c_left = C + q * c_step + full * ldc;  // the rows left over
        const index_t own = own_of(wq);
#ifdef PYRNN_DOTS
        if constexpr (own_rows) {
          static_assert(Traits::mr == dots::kPanelRows, "panel_rows reads Eigen's panels");
          for (index_t i = 0; i < own; i += Traits::mr)
            dots::panel_rows(rem, kc, a + i * kc, X + full * ldx + k, ldx, c_left + i, ldc);
        }
#endif
        const index_t tail = wq.N - own;  // packed after the whole panels, as if alone
        if (tail == 0) continue;
        std::fill_n(c_rem, nr * tail, T(0));
        gebp(ResMapper(c_rem, tail), a + own * kc, packed_rem, tail, kc, nr, T(1));
        for (index_t r = 0; r < rem; ++r) {
          T* __restrict out = c_left + r * ldc + own;
          const T* __restrict add = c_rem + r * tail;
          for (index_t j = 0; j < tail; ++j) out[j] += add[j];
        }
      }
    }
  }

 private:
  void multiply_add_in_place(index_t M, const T* X, index_t ldx, T* C, index_t ldc) const {
    if (N == 0 || K == 0) return;
#ifdef PYRNN_AXPY
    if constexpr (std::is_same<T, float>::value)
      if (raw_axpy) return axpy::multiply_add(M, N, K, X, ldx, raw, raw_ld, C, ldc);
#endif
    if (raw_dots)
      gemm_nt_dots(M, N, K, X, ldx, raw, raw_ld, C, ldc, true);
    else if (raw_row_major)  // W is [N, K] row-major, or W^T is [K, N] row-major (ColMajor W)
      gemm_nt(M, N, K, X, ldx, raw, raw_ld, C, ldc, true);
    else
      gemm_nn(M, N, K, X, ldx, raw, raw_ld, C, ldc, true);
  }
};

// Where thread `tid`, owning rows starting at `first_row`, keeps its packed panels inside one
// buffer of packed_buffer_size() elements shared by all threads.
inline index_t packed_offset(index_t first_row, index_t K, int tid, index_t depth_blocks,
                             index_t align) {
  return round_up(first_row * K + index_t(tid) * (depth_blocks + 1) * align, align);
}

// A whole number of `align` units, so that buffers laid end to end (one copy per thread) all
// start aligned like the first: Eigen's packing stores aligned packets.
inline index_t packed_buffer_size(index_t rows, index_t K, int threads, index_t depth_blocks,
                                  index_t align) {
  return round_up(rows * K + index_t(threads + 1) * (depth_blocks + 1) * align + align, align);
}

}  // namespace pyrnn
