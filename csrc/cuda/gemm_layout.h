// Row-major GEMM/GEMV expressed as the column-major calls cuBLAS takes (the usual transpose
// trick). Plain C++: blas.cu uses it for cuBLAS, and the host emulation test
// (tests/cuda_host_emulation.cpp) uses it with a reference column-major GEMM, so the mapping is
// checked without a GPU.
#pragma once

#include "pyrnn/common.h"

namespace pyrnn {
namespace cuda {

// A column-major C[m, n] (leading dimension ldc) = op(A)[m, k] op(B)[k, n].
template <typename T>
struct ColMajorGemm {
  bool trans_a, trans_b;
  index_t m, n, k;
  const T* A;
  index_t lda;
  const T* B;
  index_t ldb;
  index_t ldc;
};

// Row-major C[m, n] = op(A)[m, k] op(B)[k, n], where A is stored [k, m] when trans_a (else
// [m, k]) and B is stored [n, k] when trans_b (else [k, n]).
// Read as column-major, every row-major matrix is its transpose, so C^T[n, m] = op(B)^T op(A)^T:
// swap the operands and m <-> n, keep the transpose flags and the leading dimensions.
template <typename T>
ColMajorGemm<T> row_major_gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k,
                               const T* A, index_t lda, const T* B, index_t ldb, index_t ldc) {
  return ColMajorGemm<T>{trans_b, trans_a, n, m, k, B, ldb, A, lda, ldc};
}

// Column sums y[n] of a row-major A[m, n] (leading dimension n): read as column-major, A is
// A^T[n, m], and y = A^T 1 is a non-transposed column-major GEMV with rows = n, cols = m.
struct ColMajorGemv {
  index_t rows, cols, lda;
};

inline ColMajorGemv row_major_colsum(index_t m, index_t n) { return ColMajorGemv{n, m, n}; }

}  // namespace cuda
}  // namespace pyrnn
