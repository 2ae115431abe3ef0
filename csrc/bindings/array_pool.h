// Memory for the arrays the kernels return, kept between calls.
//
// A training loop calls forward and backward with the same shapes again and again; each call's
// outputs and saved activations are freed before the next call allocates the same sizes. From
// malloc those sizes come back as fresh pages that the kernel must fault in and zero (NumPy
// asks for huge pages), which cost 14% of an LSTM T=50 B=32 H=256 training step (measured by
// letting glibc keep its memory instead). Here a freed output's block goes back to a pool keyed
// by size and the next array of that size reuses it.
//
// Bounded: at most PYRNN_ARRAY_POOL_MB (default 256; 0 turns the pool off) of free blocks are
// kept; a block that would exceed it is freed. Arrays larger than that limit bypass the pool
// and are allocated by NumPy as before (so are its errors for impossible sizes).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace pyrnn {
namespace bind {

namespace py = pybind11;

class ArrayPool {
 public:
  // Never destroyed: arrays (and their capsules) may outlive static destruction at exit.
  static ArrayPool& instance() {
    static ArrayPool* pool = new ArrayPool();
    return *pool;
  }

  std::size_t limit() const { return limit_; }

  // A 64-byte aligned block of at least `bytes` (0 < bytes <= limit()).
  void* acquire(std::size_t bytes) {
    const std::size_t size = rounded(bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(size);
      if (it != free_.end()) {
        void* data = it->second;
        free_.erase(it);
        kept_ -= size;
        return data;
      }
    }
    char* block = static_cast<char*>(std::aligned_alloc(kHeader, size + kHeader));
    if (!block) throw std::bad_alloc();
    *reinterpret_cast<std::size_t*>(block) = size;
    return block + kHeader;
  }

  void release(void* data) {
    char* block = static_cast<char*>(data) - kHeader;
    const std::size_t size = *reinterpret_cast<std::size_t*>(block);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (kept_ + size <= limit_) {
        free_.emplace(size, data);
        kept_ += size;
        return;
      }
    }
    std::free(block);
  }

  // Bytes and blocks kept now (for tests and show_config).
  std::pair<std::size_t, std::size_t> kept() {
    std::lock_guard<std::mutex> lock(mu_);
    return {kept_, free_.size()};
  }

  // Free every kept block.
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& entry : free_) std::free(static_cast<char*>(entry.second) - kHeader);
    free_.clear();
    kept_ = 0;
  }

 private:
  static constexpr std::size_t kHeader = 64;  // the block's size, kept in front of the data
  static constexpr std::size_t kPage = 4096;

  ArrayPool() {
    const char* env = std::getenv("PYRNN_ARRAY_POOL_MB");
    long mb = 256;
    if (env && *env) {
      char* end = nullptr;
      const long v = std::strtol(env, &end, 10);
      if (end && *end == '\0' && v >= 0) mb = v;  // anything else: the default
    }
    limit_ = std::size_t(mb) << 20;
  }

  static std::size_t rounded(std::size_t bytes) { return (bytes + kPage - 1) / kPage * kPage; }

  std::mutex mu_;
  std::multimap<std::size_t, void*> free_;
  std::size_t kept_ = 0;
  std::size_t limit_ = 0;
};

// An uninitialised C-contiguous array of `shape`, from the pool when it fits there.
template <typename T>
py::array_t<T> pooled_empty(const std::vector<py::ssize_t>& shape) {
  ArrayPool& pool = ArrayPool::instance();
  std::size_t count = 1;
  bool fits = pool.limit() > 0;
  for (py::ssize_t d : shape) {
    if (d <= 0) {  // empty arrays (and anything odd) take NumPy's path
      fits = false;
      break;
    }
    if (__builtin_mul_overflow(count, std::size_t(d), &count)) {
      fits = false;
      break;
    }
  }
  std::size_t bytes = 0;
  if (fits && (__builtin_mul_overflow(count, sizeof(T), &bytes) || bytes > pool.limit()))
    fits = false;
  if (!fits) return py::array_t<T>(shape);
  void* data = pool.acquire(bytes);
  py::capsule owner(data, [](void* p) { ArrayPool::instance().release(p); });
  return py::array_t<T>(shape, static_cast<T*>(data), owner);
}

}  // namespace bind
}  // namespace pyrnn
