// Threads for a process forked from one that ran kernels.
//
// GNU libgomp keeps its thread pool's bookkeeping across fork(), but the child has none of the
// parent's threads: the child's first multi-threaded parallel region waits for them forever.
// libgomp offers no call that rebuilds its pool in the child, so a forked child runs its parallel
// regions on this team of std::threads, created in the child itself, and keeps its thread count
// (rather than falling back to one thread, as PyTorch does). A pthread_atfork child handler, registered when each library loads, marks the
// child and drops a team inherited from a parent that was itself a forked child.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define PYRNN_HAVE_ATFORK 1
#endif

namespace pyrnn {

class ThreadTeam {
 public:
  // Runs fn(tid) for every tid in [0, n): tid 0 on the calling thread, the others on the team's
  // workers, and returns when all are done. fn must not throw.
  void run(int n, const std::function<void(int)>& fn) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) {  // another thread's call (GIL released) or a nested one
      run_on_fresh_threads(n, fn);
      return;
    }
    grow(n - 1);
    {
      std::lock_guard<std::mutex> lock(m_);
      job_ = &fn;
      active_ = n - 1;
      pending_ = n - 1;
      ++generation_;
    }
    wake_.notify_all();
    fn(0);
    std::unique_lock<std::mutex> lock(m_);
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
  }

  int workers() {
    std::lock_guard<std::mutex> lock(m_);
    return int(started_);
  }

 private:
  static void run_on_fresh_threads(int n, const std::function<void(int)>& fn) {
    std::vector<std::thread> threads;
    threads.reserve(size_t(n - 1));
    for (int tid = 1; tid < n; ++tid) threads.emplace_back(fn, tid);
    fn(0);
    for (auto& t : threads) t.join();
  }

  // Workers are detached and live as long as the process (the team is never destroyed).
  void grow(int workers) {
    std::lock_guard<std::mutex> lock(m_);
    while (int(started_) < workers) {
      const int tid = int(started_) + 1;
      std::thread([this, tid, seen = generation_] { loop(tid, seen); }).detach();
      ++started_;
    }
  }

  void loop(int tid, unsigned seen) {
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lock(m_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (tid > active_) continue;  // not part of this call's team
        job = job_;
      }
      (*job)(tid);
      std::lock_guard<std::mutex> lock(m_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex busy_;  // one call at a time uses the workers
  std::mutex m_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* job_ = nullptr;
  unsigned generation_ = 0;
  int active_ = 0, pending_ = 0;
  unsigned started_ = 0;
};

namespace detail {

// Set in every child of fork(); never cleared (a grandchild is a forked child too).
inline std::atomic<bool>& forked_child_flag() {
  static std::atomic<bool> flag{false};
  return flag;
}

inline std::atomic<ThreadTeam*>& fork_team_slot() {
  static std::atomic<ThreadTeam*> team{nullptr};
  return team;
}

// A team inherited from the parent has no threads here (and may hold a locked mutex): it is
// abandoned, not destroyed, and a fresh one is made on first use.
inline void on_fork_child() {
  forked_child_flag().store(true);
  fork_team_slot().store(nullptr);
}

}  // namespace detail

inline bool in_forked_child() { return detail::forked_child_flag().load(std::memory_order_relaxed); }

inline ThreadTeam& fork_team() {
  auto& slot = detail::fork_team_slot();
  ThreadTeam* team = slot.load(std::memory_order_acquire);
  if (team) return *team;
  auto* fresh = new ThreadTeam();
  if (slot.compare_exchange_strong(team, fresh)) return *fresh;
  delete fresh;  // another thread installed one first
  return *team;
}

// Each library that runs parallel regions calls this once when it loads (a namespace-scope
// static), so a fork at any later time marks the child.
inline bool watch_for_fork() {
#ifdef PYRNN_HAVE_ATFORK
  return pthread_atfork(nullptr, nullptr, &detail::on_fork_child) == 0;
#else
  return false;
#endif
}

}  // namespace pyrnn
