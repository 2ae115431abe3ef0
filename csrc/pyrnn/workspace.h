// Scratch memory for one kernel call, carved from one block that each calling thread keeps
// between calls (up to kRetainBytes). Fresh large allocations cost page faults and zeroing on
// every call; a kept block is already mapped. Allocation happens before any parallel region,
// so std::bad_alloc reaches Python as MemoryError.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace pyrnn {

class Workspace {
 public:
  static constexpr std::size_t kAlign = 64;
  static constexpr std::size_t kRetainBytes = std::size_t(64) << 20;

  // Ask for n elements of T (64-byte aligned, uninitialised); `ptr` is set by allocate().
  template <typename T>
  void request(T*& ptr, std::size_t n) {
    const std::size_t offset = bytes_;
    bytes_ += (n * sizeof(T) + kAlign - 1) / kAlign * kAlign;
    setters_.push_back([&ptr, offset](char* base) { ptr = reinterpret_cast<T*>(base + offset); });
  }

  void allocate() {
    char* base = block(bytes_);
    for (auto& set : setters_) set(base);
  }

 private:
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  using Block = std::unique_ptr<char, Free>;

  // The kept block (2 MiB or more) is asked for in transparent huge pages: packed weights
  // of 4-16 MiB are streamed from L3 once per step, and on 4 KiB pages that is more pages than
  // the core's second-level TLB holds (Zen 4: 3072 entries), so every step walks page tables
  // again. A block for one call only stays on normal pages: faulting in fresh huge pages
  // (with compaction) on every call costs more than the TLB misses it saves.
  static Block aligned_block(std::size_t bytes, bool huge_pages) {
    constexpr std::size_t kHugePage = std::size_t(2) << 20;
    const bool huge = huge_pages && bytes >= kHugePage;
    const std::size_t align = huge ? kHugePage : kAlign;
    const std::size_t size = (bytes + align - 1) / align * align + align;
    void* p = std::aligned_alloc(align, size);
    if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (huge) madvise(p, size, MADV_HUGEPAGE);  // advice only: failure leaves normal pages
#endif
    return Block(static_cast<char*>(p));
  }

  char* block(std::size_t bytes) {
    thread_local Block kept;
    thread_local std::size_t kept_bytes = 0;
    if (bytes > kRetainBytes) {  // too big to keep: this call only
      own_ = aligned_block(bytes, false);
      return own_.get();
    }
    if (bytes > kept_bytes) {
      kept.reset();
      kept_bytes = 0;
      kept = aligned_block(bytes, true);
      kept_bytes = bytes;
    }
    return kept.get();
  }

  std::size_t bytes_ = 0;
  std::vector<std::function<void(char*)>> setters_;
  Block own_;
};

}  // namespace pyrnn
