// OpenMP owns every thread. One parallel region per kernel call; barriers inside it.
// Builds without OpenMP run the same code on one thread.
#pragma once

#include <algorithm>

#include "common.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyrnn {

inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Runs body(tid, nthreads) on up to `nthreads` threads; body must not throw.
template <class Body>
inline void parallel_region(int nthreads, Body&& body) {
#ifdef _OPENMP
  if (nthreads > 1) {
#pragma omp parallel num_threads(nthreads)
    body(omp_get_thread_num(), omp_get_num_threads());
    return;
  }
#endif
  (void)nthreads;
  body(0, 1);
}

inline void barrier() {
#ifdef _OPENMP
#pragma omp barrier
#endif
}

// Split [0, n) into `parts` ranges whose inner boundaries are multiples of `align`.
struct Range {
  index_t begin, end;
  index_t size() const { return end - begin; }
};

inline Range split_range(index_t n, int parts, int part, index_t align) {
  auto edge = [&](int k) -> index_t {
    if (k >= parts) return n;
    index_t e = (n * k) / parts;
    e = (e / align) * align;
    return std::min(e, n);
  };
  return Range{edge(part), edge(part + 1)};
}

}  // namespace pyrnn
