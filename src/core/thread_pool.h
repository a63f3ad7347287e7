// A persistent pool of worker threads: created once, woken per parallel region, so a token's
// dozens of matmuls do not each pay for thread creation. The calling thread takes part as worker 0.
//
// Why workers spin before they sleep: a decode step is a few hundred short parallel regions (one
// per matmul, tens of microseconds each); waking a sleeping thread through a futex costs about as
// much as the region itself. Workers therefore poll for the next region for a short while
// (kSpinIterations, roughly 50-100 us) and only then block on the condition variable, so an idle
// pool (a server between requests) uses no CPU.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace chassis {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index, n_threads) on every thread and returns when all are done.
  void run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous chunks, one per thread: fn(begin, end).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

  // Same, with chunk boundaries at multiples of `align` (except the end), for kernels that work on
  // groups of rows.
  void parallel_for_aligned(int64_t n, int64_t align, const std::function<void(int64_t, int64_t)>& fn);

  // Splits [0, n) into chunks that threads take in turn as they finish, guided: each take is a share
  // of what is left, 1 / (2 x threads), and at least one. A slower core (a busy neighbour on a
  // shared machine) then does less instead of the whole region waiting for it, a region starts with
  // few large chunks (few atomic takes) and ends with single units (the first thread done waits for
  // one unit, not for a large fixed chunk). Which thread computes a chunk must not change its result.
  void parallel_for_guided(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  const std::function<void(int, int)>* task_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stopping_{false};  // written under mutex_ (for the waiters), read without it (the spin)
};

}  // namespace chassis
