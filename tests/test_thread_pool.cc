// The thread pool's ways of splitting work: every index once, each thread's takes contiguous, the
// minimum take, and the team regions (collective calls, serial steps, settle, broadcast).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace chassis {
namespace {

TEST(ThreadPool, CoversEveryIndexOnce) {
  ThreadPool pool(4);
  for (int64_t n : {0, 1, 3, 1000}) {
    std::vector<int> hits(static_cast<size_t>(n));
    pool.parallel_for(n, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) hits[size_t(i)]++; });
    for (int h : hits) EXPECT_EQ(h, 1);
    for (int64_t align : {1, 4}) {
      std::vector<int> aligned_hits(static_cast<size_t>(n));
      pool.parallel_for_aligned(n, align, [&](int64_t b, int64_t e) {
        EXPECT_TRUE(b % align == 0);
        for (int64_t i = b; i < e; ++i) aligned_hits[size_t(i)]++;
      });
      for (int h : aligned_hits) EXPECT_EQ(h, 1);
    }
  }
}

// Stealing: every index once; a thread's takes follow one another (one memory stream) except where
// it stole, which happens a few times a region, not once a take; a slow thread is relieved.
TEST(ThreadPool, StealingKeepsEachThreadContiguous) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 3, 7, 1000, 100000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::mutex m;
      std::map<std::thread::id, std::vector<std::pair<int64_t, int64_t>>> takes;
      pool.parallel_for_stealing(n, [&](int64_t b, int64_t e) {
        ASSERT_LT(b, e);
        for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
        std::lock_guard<std::mutex> lock(m);
        takes[std::this_thread::get_id()].emplace_back(b, e);
      });
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
      if (threads != 2 || n != 100000) continue;
      // Two threads (as many as this machine's cores; more would be descheduled and robbed at
      // random): most takes continue the taker's previous one. One shared counter would make nearly
      // every take a jump.
      size_t n_takes = 0, jumps = 0;
      for (const auto& [id, list] : takes) {
        n_takes += list.size();
        for (size_t k = 1; k < list.size(); ++k) jumps += list[k].first != list[k - 1].second;
      }
      EXPECT_GT(n_takes, 50u);  // takes are shares of a range, not whole ranges
      EXPECT_LT(jumps * 2, n_takes);
    }
  }
  // A thread 50x slower per unit (the calling thread here) ends up with far less than its half.
  ThreadPool pool(2);
  const auto caller = std::this_thread::get_id();
  std::atomic<int64_t> slow_units{0};
  pool.parallel_for_stealing(64, [&](int64_t b, int64_t e) {
    const bool slow = std::this_thread::get_id() == caller;
    if (slow) slow_units += e - b;
    std::this_thread::sleep_for(std::chrono::microseconds((slow ? 1000 : 20) * (e - b)));
  });
  EXPECT_LT(slow_units.load(), 16);
}

// min_take: takes from a thread's own range hold at least that many units while that many are left,
// so a smaller take only ends a range; every index is still run once.
TEST(ThreadPool, StealingHonoursTheMinimumTake) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t min_take : {1, 4, 64, 1000000}) {
      for (int64_t n : {1, 5, 63, 10000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::mutex m;
        std::map<std::thread::id, std::vector<std::pair<int64_t, int64_t>>> takes;
        pool.parallel_for_stealing(
            n,
            [&](int64_t b, int64_t e) {
              for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
              std::lock_guard<std::mutex> lock(m);
              takes[std::this_thread::get_id()].emplace_back(b, e);
            },
            min_take);
        for (auto& h : hits) EXPECT_EQ(h.load(), 1) << "threads " << threads << " min " << min_take << " n " << n;
        if (threads != 2 || n != 10000) continue;
        // A take under min_take ends a range: the same thread's next take (if any) starts elsewhere,
        // a stolen range. (With two threads a stolen range never starts where the thief's ended.)
        for (const auto& [id, list] : takes) {
          for (size_t k = 0; k + 1 < list.size(); ++k) {
            if (list[k].second - list[k].first < min_take) {
              EXPECT_NE(list[k + 1].first, list[k].second) << "min " << min_take;
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace chassis
