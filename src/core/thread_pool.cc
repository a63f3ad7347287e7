#include "core/thread_pool.h"

#include <algorithm>
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
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)), steal_ranges_(size_t(n_threads_)) {
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
    (*task_)(index, n_threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = &fn;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleepers_.load(std::memory_order_relaxed) > 0) wake_.notify_all();
  fn(0, n_threads_);
  // Workers finish within microseconds of us in a balanced region; yield if one was descheduled.
  for (int i = 0; pending_.load(std::memory_order_acquire) != 0; ++i) {
    if (i < kSpinIterations) CHASSIS_CPU_RELAX();
    else std::this_thread::yield();
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  parallel_for_aligned(n, 1, fn);
}

void ThreadPool::parallel_for_aligned(int64_t n, int64_t align, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t units = (n + align - 1) / align;
  const int nt = static_cast<int>(std::min<int64_t>(n_threads_, units));
  if (nt == 1) {
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
  if (n_threads_ == 1 || n == 1) {
    fn(0, n);
    return;
  }
  if (n >= (int64_t(1) << 32)) throw std::length_error("parallel_for_stealing: more than 2^32 - 1 units");
  auto pack = [](uint64_t front, uint64_t back) { return back << 32 | front; };
  const uint64_t least = uint64_t(std::max<int64_t>(1, min_take));
  const int nth = n_threads_;
  for (int i = 0; i < nth; ++i)
    steal_ranges_[size_t(i)].bounds.store(pack(uint64_t(n * i / nth), uint64_t(n * (i + 1) / nth)), std::memory_order_relaxed);
  // The stores above happen before run() publishes the region (its generation bump is a release).
  run([&](int ith, int) {
    std::atomic<uint64_t>& own = steal_ranges_[size_t(ith)].bounds;
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
        const uint64_t b = steal_ranges_[size_t(v)].bounds.load(std::memory_order_relaxed);
        const uint64_t left = (b >> 32) - (b & 0xffffffffu);
        if ((b >> 32) > (b & 0xffffffffu) && left > most) most = left, victim = v, seen = b;
      }
      if (victim < 0) return;  // every range is empty: the region's work is all taken
      const uint64_t vf = seen & 0xffffffffu, vb = seen >> 32, mid = vb - (vb - vf + 1) / 2;
      if (!steal_ranges_[size_t(victim)].bounds.compare_exchange_strong(seen, pack(vf, mid), std::memory_order_relaxed))
        continue;  // the victim took or was robbed meanwhile: look again
      // [mid, vb) is ours now. Only we write our own range while it is empty (thieves skip empty
      // ranges, and their compare-and-swap against an older value fails), so a plain store will do.
      own.store(pack(mid, vb), std::memory_order_relaxed);
    }
  });
}

}  // namespace chassis
