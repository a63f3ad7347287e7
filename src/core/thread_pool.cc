#include "core/thread_pool.h"

#include <algorithm>
#include <exception>
#include <stdexcept>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CHASSIS_CPU_RELAX() _mm_pause()
#else
#define CHASSIS_CPU_RELAX() std::this_thread::yield()
#endif

namespace chassis {
namespace {
constexpr int kSpinIterations = 1 << 13;  // pauses before a worker blocks (~50-100 us)

// The team the calling thread is running a body of (see run_team), and its place there: its index,
// whether a serial step left a barrier owed, whether it is running a serial step (the pool's calls
// then run on it alone).
thread_local const ThreadPool* t_team = nullptr;
thread_local int t_team_index = 0;
thread_local bool t_barrier_owed = false;
thread_local bool t_alone = false;

uint64_t pack(uint64_t front, uint64_t back) { return back << 32 | front; }

// What a team thread throws out of a barrier when another thread's body threw: it only unwinds the
// body; run_team reports the exception that caused it.
struct TeamAborted {};
}  // namespace

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::max(1, n_threads)),
      steal_ranges_(size_t(n_threads_)),
      team_ranges_(size_t(n_threads_)),
      arrivals_(size_t(n_threads_)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);  // set under the mutex, so a worker about to wait sees it
    stopping_.store(true, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    bool ready = false;
    for (int i = 0; i < kSpinIterations; ++i) {
      if (generation_.load(std::memory_order_acquire) != seen || stopping_.load(std::memory_order_acquire)) {
        ready = true;
        break;
      }
      CHASSIS_CPU_RELAX();
    }
    if (!ready) {
      // The generation is bumped under the mutex, so checking it here under the mutex cannot miss
      // a wake-up between the last poll and the wait.
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1, std::memory_order_relaxed);
      wake_.wait(lock, [&] {
        return stopping_.load(std::memory_order_relaxed) || generation_.load(std::memory_order_relaxed) != seen;
      });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (stopping_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    try {
      (*task_)(index, n_threads_);
    } catch (...) {
      keep_first_error(std::current_exception());
    }
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::keep_first_error(std::exception_ptr error) {
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (!first_error_) first_error_ = std::move(error);
}

void ThreadPool::rethrow_kept_error() {
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(error_mutex_);
    std::swap(error, first_error_);
  }
  if (error) std::rethrow_exception(error);
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (in_team()) {
    if (t_alone) {
      fn(0, 1);
      return;
    }
    settle();
    fn(t_team_index, n_threads_);
    barrier_now();
    return;
  }
  run_region(fn);
  rethrow_kept_error();
}

void ThreadPool::run_region(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    try {
      fn(0, 1);
    } catch (...) {
      keep_first_error(std::current_exception());
    }
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = &fn;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleepers_.load(std::memory_order_relaxed) > 0) wake_.notify_all();
  try {
    fn(0, n_threads_);
  } catch (...) {
    keep_first_error(std::current_exception());  // the workers still hold fn: wait for them below
  }
  // Workers finish within microseconds of us in a balanced region; yield if one was descheduled.
  for (int i = 0; pending_.load(std::memory_order_acquire) != 0; ++i) {
    if (i < kSpinIterations) CHASSIS_CPU_RELAX();
    else std::this_thread::yield();
  }
}

void ThreadPool::run_team(const std::function<void(int, int)>& body) {
  if (in_team()) throw std::logic_error("ThreadPool::run_team: already in a team of this pool");
  run_region([&](int ith, int nth) {
    t_team = this;
    t_team_index = ith;
    t_barrier_owed = false;
    t_alone = false;
    try {
      body(ith, nth);
    } catch (const TeamAborted&) {
      // another thread's exception is the one to report
    } catch (...) {
      keep_first_error(std::current_exception());  // kept before the others are told to leave
      team_failed_.store(true, std::memory_order_release);
    }
    t_team = nullptr;  // (a barrier still owed is paid by run_region's own join)
    t_alone = false;
  });
  if (team_failed_.load(std::memory_order_acquire)) {
    // The threads left at different barriers: start the next team from equal counts and empty
    // ranges, as a team that ended normally leaves them. Every thread is out of the team here.
    for (auto& a : arrivals_) a.value.store(0, std::memory_order_relaxed);
    for (auto& r : team_ranges_) r.value.store(0, std::memory_order_relaxed);
    team_failed_.store(false, std::memory_order_relaxed);
  }
  rethrow_kept_error();
}

bool ThreadPool::in_team() const { return t_team == this; }

int ThreadPool::team_index() const { return in_team() ? t_team_index : 0; }

void ThreadPool::set_alone(bool alone) { t_alone = alone; }

bool ThreadPool::alone() const { return in_team() && t_alone; }

void ThreadPool::owe_barrier() { t_barrier_owed = true; }

void ThreadPool::settle() {
  if (!in_team() || t_alone || !t_barrier_owed) return;
  t_barrier_owed = false;
  barrier_now();
}

void ThreadPool::barrier() {
  if (!in_team() || t_alone) return;
  t_barrier_owed = false;
  barrier_now();
}

const void* ThreadPool::broadcast(const void* value) {
  if (!in_team() || t_alone || n_threads_ == 1) return value;
  settle();
  // The barrier about to be passed is the (count + 1)-th; its parity picks the slot.
  const uint64_t slot = (arrivals_[size_t(t_team_index)].value.load(std::memory_order_relaxed) + 1) % 2;
  if (t_team_index == 0) broadcast_slots_[slot].value.store(reinterpret_cast<uintptr_t>(value), std::memory_order_relaxed);
  barrier_now();
  return reinterpret_cast<const void*>(uintptr_t(broadcast_slots_[slot].value.load(std::memory_order_relaxed)));
}

void ThreadPool::barrier_now() {
  if (n_threads_ == 1) return;
  // Each thread counts its own arrivals on its own line and waits until every other count has caught
  // up: one store and one read of each other line, no read-modify-write of a shared one.
  std::atomic<uint64_t>& own = arrivals_[size_t(t_team_index)].value;
  const uint64_t epoch = own.load(std::memory_order_relaxed) + 1;
  own.store(epoch, std::memory_order_release);
  for (int t = 0; t < n_threads_; ++t) {
    if (t == t_team_index) continue;
    const std::atomic<uint64_t>& other = arrivals_[size_t(t)].value;
    for (int i = 0; other.load(std::memory_order_acquire) < epoch; ++i) {
      if (team_failed_.load(std::memory_order_acquire)) throw TeamAborted{};
      if (i < kSpinIterations) CHASSIS_CPU_RELAX();
      else std::this_thread::yield();  // the other thread is descheduled, or doing long serial work
    }
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  parallel_for_aligned(n, 1, fn);
}

void ThreadPool::parallel_for_aligned(int64_t n, int64_t align, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;  // (uniform across a team: every thread passes the same n)
  const int64_t units = (n + align - 1) / align;
  const int nt = static_cast<int>(std::min<int64_t>(n_threads_, units));
  // (In a team every thread takes part, even with less work than threads; in a serial step, only its own.)
  if (in_team() ? t_alone : nt == 1) {
    fn(0, n);
    return;
  }
  run([&](int ith, int) {
    if (ith >= nt) return;
    const int64_t per = (units + nt - 1) / nt;
    const int64_t b = std::min(n, ith * per * align), e = std::min(n, (ith + 1) * per * align);
    if (b < e) fn(b, e);
  });
}

void ThreadPool::parallel_for_stealing(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_take) {
  if (n <= 0) return;
  if (n >= (int64_t(1) << 32)) throw std::length_error("parallel_for_stealing: more than 2^32 - 1 units");
  const uint64_t least = uint64_t(std::max<int64_t>(1, min_take));
  const int nth = n_threads_;
  if (in_team() && !t_alone) {
    settle();
    // Each thread sets its own range. A thread that finds another's still empty (not yet set) just
    // leaves that range to its owner; none is stolen from before it is set.
    const int ith = t_team_index;
    team_ranges_[size_t(ith)].value.store(pack(uint64_t(n * ith / nth), uint64_t(n * (ith + 1) / nth)),
                                          std::memory_order_relaxed);
    steal_loop(team_ranges_, ith, least, fn);
    barrier_now();
    return;
  }
  if (nth == 1 || n == 1 || t_alone) {
    fn(0, n);
    return;
  }
  for (int i = 0; i < nth; ++i)
    steal_ranges_[size_t(i)].value.store(pack(uint64_t(n * i / nth), uint64_t(n * (i + 1) / nth)), std::memory_order_relaxed);
  // The stores above happen before run() publishes the region (its generation bump is a release).
  run([&](int ith, int) { steal_loop(steal_ranges_, ith, least, fn); });
}

void ThreadPool::steal_loop(std::vector<LineAtomic>& ranges, int ith, uint64_t least,
                            const std::function<void(int64_t, int64_t)>& fn) {
  const int nth = int(ranges.size());
  std::atomic<uint64_t>& own = ranges[size_t(ith)].value;
  for (;;) {
    // Take from the front of our own range.
    uint64_t cur = own.load(std::memory_order_relaxed);
    uint64_t front = cur & 0xffffffffu, back = cur >> 32;
    if (front < back) {
      const uint64_t take = std::min(back - front, std::max(least, (back - front) / 8));
      if (!own.compare_exchange_weak(cur, pack(front + take, back), std::memory_order_relaxed)) continue;
      fn(int64_t(front), int64_t(front + take));
      continue;
    }
    // Empty: steal the back half of the fullest other range (rounded up, so a single unit is taken).
    int victim = -1;
    uint64_t most = 0, seen = 0;
    for (int v = 0; v < nth; ++v) {
      if (v == ith) continue;
      const uint64_t b = ranges[size_t(v)].value.load(std::memory_order_relaxed);
      const uint64_t left = (b >> 32) - (b & 0xffffffffu);
      if ((b >> 32) > (b & 0xffffffffu) && left > most) most = left, victim = v, seen = b;
    }
    if (victim < 0) return;  // every range is empty: the region's work is all taken
    const uint64_t vf = seen & 0xffffffffu, vb = seen >> 32, mid = vb - (vb - vf + 1) / 2;
    if (!ranges[size_t(victim)].value.compare_exchange_strong(seen, pack(vf, mid), std::memory_order_relaxed))
      continue;  // the victim took or was robbed meanwhile: look again
    // [mid, vb) is ours now. Only we write our own range while it is empty (thieves skip empty
    // ranges, and their compare-and-swap against an older value fails), so a plain store will do.
    own.store(pack(mid, vb), std::memory_order_relaxed);
  }
}

}  // namespace chassis
