// A persistent pool of worker threads: created once, woken per parallel region, so a token's
// dozens of matmuls do not each pay for thread creation. The calling thread takes part as worker 0.
//
// Why workers spin before they sleep: waking a sleeping thread through a futex costs about as much
// as a short region (a product of tens of microseconds). Workers therefore poll for the next region
// for a short while (kSpinIterations, roughly 50-100 us) and only then block on the condition
// variable, so an idle pool (a server between requests) uses no CPU. A forward pass, a few hundred
// such steps, runs as one team region (run_team) whose threads meet at barriers instead.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
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

  // Runs fn(thread_index, n_threads) on every thread and returns when all are done. In a team (see
  // run_team) every thread of it calls run, runs fn for itself, and returns when all have.
  // If fn throws on any thread, run still waits for every thread to finish its fn (fn and what it
  // refers to must outlive every call of it), then rethrows the first exception on the caller. So do
  // parallel_for and the others built on run: a thread that throws stops, the others go on.
  void run(const std::function<void(int, int)>& fn);

  // A team region: body(thread_index, n_threads) runs on every thread at once, for as long as the
  // caller's program lasts (a forward pass), and inside it the pool's parallel calls are collective:
  // every thread of the team makes the same calls with the same arguments, each does its share, and
  // the call returns when all are done (a barrier), instead of starting a region of its own. Steps
  // that one thread does go in serial(). Why: a decode step is ~120 products of tens of microseconds;
  // a region costs ~4-5 us a product on the 2-vCPU EPYC measured (the waker's stores, the worker's
  // chain of reads, the join), a barrier in a running team ~0.5-1 us.
  // If body throws on one thread, the others would wait for it at their next barrier forever; instead
  // the team is marked failed, every thread waiting at (or reaching) a barrier unwinds out of body,
  // and run_team rethrows the first exception on its caller, with the pool ready for the next region.
  // Whatever the team was computing is then half done: the caller must treat its outputs as garbage.
  void run_team(const std::function<void(int, int)>& body);
  // Whether the calling thread is running a team body of this pool, and its index in the team.
  bool in_team() const;
  int team_index() const;

  // In a team, thread 0 runs f while the others go on to the team's next collective call, which
  // waits for f first (a barrier owed, paid once however many serial steps come in a row). Inside f
  // the pool's calls (a nested serial() too) run on thread 0 alone. Outside a team: runs f.
  template <class F>
  void serial(F&& f) {
    if (!in_team() || alone()) {
      f();
      return;
    }
    if (team_index() == 0) {
      set_alone(true);
      f();
      set_alone(false);
    }
    owe_barrier();
  }
  // In a team: returns when the serial steps before are done (the barrier they left owed, if any);
  // call it before reading, outside the pool's calls, what a serial step wrote. Outside a team:
  // nothing.
  void settle();
  // In a team: returns when every thread of it has got here. Outside a team: nothing.
  void barrier();
  // In a team: thread 0's value, on every thread (a barrier). Outside a team: value.
  const void* broadcast(const void* value);

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
  // run without the rethrow: every thread's exception is caught and the first one kept for it.
  void run_region(const std::function<void(int, int)>& fn);
  void keep_first_error(std::exception_ptr error);
  void rethrow_kept_error();
  void set_alone(bool alone);
  bool alone() const;  // in a serial step
  void owe_barrier();
  void barrier_now();

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  const std::function<void(int, int)>* task_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stopping_{false};  // written under mutex_ (for the waiters), read without it (the spin)
  std::mutex error_mutex_;
  std::exception_ptr first_error_;  // a region's first exception, under error_mutex_
  // Set when a team body threw: threads at barriers then leave instead of waiting for it.
  std::atomic<bool> team_failed_{false};
  // An atomic on its own cache line. parallel_for_stealing's ranges are one per thread: [front, back)
  // packed as (back << 32) | front, so a take and a steal are each one compare-and-swap.
  struct alignas(64) LineAtomic {
    std::atomic<uint64_t> value{0};
  };
  std::vector<LineAtomic> steal_ranges_;
  // parallel_for_stealing's work loop for thread ith over ranges already set (steal_ranges_ or team_ranges_).
  static void steal_loop(std::vector<LineAtomic>& ranges, int ith, uint64_t least,
                         const std::function<void(int64_t, int64_t)>& fn);

  // A team's: its own steal ranges (each thread sets its own on entry: the barrier that ended the
  // team's previous call left them all empty, and a thief never touches an empty one), and each
  // thread's barrier count, written by that thread only.
  std::vector<LineAtomic> team_ranges_;
  std::vector<LineAtomic> arrivals_;
  // broadcast()'s slots, used in turn by the parity of the barrier count: thread 0 can get to the
  // next broadcast before another thread has read this one, but not to the one after.
  LineAtomic broadcast_slots_[2];
};

}  // namespace chassis
