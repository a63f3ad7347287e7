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

  // Splits [0, n) into one contiguous range per thread, which its thread works through front to back
  // in takes of 1/8 of what is left of it (at least one); a thread whose range is empty steals the
  // back half of the fullest other range and goes on there. Why not chunks from one shared counter
  // (as this pool did): every chunk a thread takes starts a new memory stream, and on the machines
  // measured each stream start costs ~1 us before the hardware prefetcher runs ahead again. Taking
  // the next chunk of its own range keeps a thread's stream going; stealing still lets a slower core
  // (a busy neighbour on a shared host) do less, and the last takes are small (min_take units, or
  // what is left), so the thread done first waits for one such take at most. min_take exists because
  // a take has a cost of its own (a compare-and-swap, the caller's call chain): matmul_group takes
  // at least 32 KiB of weights. Which thread computes an index must not change its result.
  void parallel_for_stealing(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_take = 1);

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
  // parallel_for_stealing's ranges, one per thread on its own cache line: [front, back) packed as
  // (back << 32) | front, so a take and a steal are each one compare-and-swap.
  struct alignas(64) StealRange {
    std::atomic<uint64_t> bounds{0};
  };
  std::vector<StealRange> steal_ranges_;
};

}  // namespace chassis
