// OpenMP owns every thread. One parallel region per kernel call; barriers inside it.
// Builds without OpenMP run the same code on one thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <thread>

#include "common.h"
#include "fork_team.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

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

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// The per-step barrier of a parallel region: spins briefly, then yields the core. On a shared
// or oversubscribed machine a thread waiting for a descheduled peer hands its core over instead
// of burning it, as OpenMP's default barrier does for a long while.
class StepBarrier {
 public:
  void set_count(int n) { count_ = n; }

  void wait() {
    if (count_ <= 1) return;
    const unsigned gen = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == count_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);  // publishes everyone's writes
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == gen; ++spins) {
      if (spins < kSpins)
        cpu_relax();
      else
        std::this_thread::yield();
    }
  }

 private:
  static constexpr int kSpins = 2000;
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<unsigned> generation_{0};
  int count_ = 1;
};

// Whether kernel threads flush subnormal floats to zero (one flag per instruction-set build,
// set through its KernelTable). Vanishing gradients in long BPTT are subnormal, and every
// operation on one costs about 100x a normal one.
inline std::atomic<bool>& flush_denormals_flag() {
  static std::atomic<bool> flag{true};
  return flag;
}

// For its lifetime, this thread runs with flush-to-zero and denormals-are-zero set in MXCSR;
// the caller's MXCSR comes back on exit (OpenMP's thread 0 is the calling Python thread).
class DenormalsFlushed {
 public:
  explicit DenormalsFlushed(bool on) : on_(on) {
#if defined(__SSE2__)
    if (on_) {
      saved_ = _mm_getcsr();
      _mm_setcsr(saved_ | kFtz | kDaz);
    }
#endif
  }
  ~DenormalsFlushed() {
#if defined(__SSE2__)
    if (on_) _mm_setcsr(saved_);
#endif
  }
  DenormalsFlushed(const DenormalsFlushed&) = delete;
  DenormalsFlushed& operator=(const DenormalsFlushed&) = delete;

 private:
  static constexpr unsigned kFtz = 1u << 15, kDaz = 1u << 6;
  bool on_;
  unsigned saved_ = 0;
};

// Runs body(tid, nthreads, barrier) on up to `nthreads` threads, each with subnormals flushed
// when flush_denormals_flag() is set; body must not throw. OpenMP's threads, except in a forked
// child, where the library's own team runs it.
template <class Body>
inline void parallel_region(int nthreads, Body&& body) {
  StepBarrier bar;
  const bool flush = flush_denormals_flag().load(std::memory_order_relaxed);
#ifdef _OPENMP
  if (nthreads > 1 && in_forked_child()) {  // libgomp's pool is stale after fork (fork_team.h)
    bar.set_count(nthreads);
    fork_team().run(nthreads, [&](int tid) {
      DenormalsFlushed mode(flush);
      body(tid, nthreads, bar);
    });
    return;
  }
  if (nthreads > 1) {
#pragma omp parallel num_threads(nthreads)
    {
      DenormalsFlushed mode(flush);
#pragma omp single
      bar.set_count(omp_get_num_threads());
      // (the implicit barrier after `single` publishes the count)
      body(omp_get_thread_num(), omp_get_num_threads(), bar);
    }
    return;
  }
#endif
  (void)nthreads;
  DenormalsFlushed mode(flush);
  body(0, 1, bar);
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
