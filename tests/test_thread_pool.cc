// The thread pool's ways of splitting work: every index once, each thread's takes contiguous, the
// minimum take, the team regions (collective calls, serial steps, settle, broadcast), and exceptions
// thrown inside a region or a team.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
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

// A team's calls, made by every thread together, each see what the step before wrote: a serial step
// (slowed down, so that a collective call that did not wait for it would read stale values), the
// collective stealing, run and settle. Every index once per call, for many calls in a row.
TEST(ThreadPool, TeamStepsSeeEachOthersWrites) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    constexpr int kSteps = 150;
    std::vector<int> data(700), out(700);
    std::vector<std::vector<int>> seen(size_t(threads), std::vector<int>(kSteps, -1));
    std::vector<std::atomic<int>> runs(static_cast<size_t>(threads));
    int token = -1, errors = 0, index_errors = 0;
    pool.run_team([&](int ith, int nth) {
      EXPECT_EQ(nth, threads);
      EXPECT_TRUE(pool.in_team());
      EXPECT_EQ(pool.team_index(), ith);
      for (int k = 0; k < kSteps; ++k) {
        const int64_t n = k % 7 * 100 + k % 3;  // 0 .. 602, some empty
        pool.serial([&] {
          std::this_thread::sleep_for(std::chrono::microseconds(k % 5 == 0 ? 200 : 5));
          for (int64_t i = 0; i < n; ++i) data[size_t(i)] = k;
          token = k;
        });
        pool.parallel_for_stealing(
            n, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) out[size_t(i)] += data[size_t(i)] + 1; },
            k % 4 + 1);
        pool.run([&](int t, int) { runs[size_t(t)]++; });
        pool.serial([&] {
          for (int64_t i = 0; i < n; ++i) {
            errors += out[size_t(i)] != k + 1;
            out[size_t(i)] = 0;
          }
          for (auto& r : runs) index_errors += r.exchange(0) != 1;
          token = -k;  // written before the settle below, read after it
        });
        pool.settle();
        seen[size_t(ith)][size_t(k)] = token;
        pool.barrier();  // nobody writes token again until every thread has read it
      }
    });
    EXPECT_FALSE(pool.in_team());
    EXPECT_EQ(errors, 0) << threads << " threads";
    EXPECT_EQ(index_errors, 0) << threads << " threads";
    for (int t = 0; t < threads; ++t)
      for (int k = 0; k < kSteps; ++k) ASSERT_EQ(seen[size_t(t)][size_t(k)], -k) << "thread " << t << " step " << k;
  }
}

// broadcast hands every thread thread 0's value, call after call (its two slots alternate: with one,
// thread 0 could store the next value before a slower thread read this one).
TEST(ThreadPool, TeamBroadcastGivesThreadZerosValue) {
  ThreadPool pool(3);
  std::atomic<int> wrong{0};
  std::vector<std::vector<int>> values(3, std::vector<int>(200));
  pool.run_team([&](int ith, int) {
    for (int k = 0; k < 200; ++k) {
      if (pool.broadcast(&values[size_t(ith)][size_t(k)]) != &values[0][size_t(k)]) wrong++;
      if (k % 3 == 1) pool.barrier();
      else if (k % 3 == 2) pool.run([](int, int) {});
      // (k % 3 == 0: the next broadcast follows right away)
    }
  });
  EXPECT_EQ(wrong.load(), 0);
  int outside = 7;
  EXPECT_EQ(pool.broadcast(&outside), &outside);
}

// Inside a serial step the pool's calls run on its thread alone (the others are not listening).
TEST(ThreadPool, SerialStepRunsPoolCallsAlone) {
  ThreadPool pool(2);
  std::vector<int> hits(100);
  std::vector<std::pair<int, int>> run_args;
  std::thread::id serial_thread, caller = std::this_thread::get_id();
  std::atomic<int> other_threads{0};
  pool.run_team([&](int, int) {
    pool.serial([&] {
      serial_thread = std::this_thread::get_id();
      pool.parallel_for(100, [&](int64_t b, int64_t e) {
        if (std::this_thread::get_id() != serial_thread) other_threads++;
        for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
      });
      pool.parallel_for_stealing(100, [&](int64_t b, int64_t e) {
        if (std::this_thread::get_id() != serial_thread) other_threads++;
        for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
      });
      pool.run([&](int ith, int nth) { run_args.emplace_back(ith, nth); });
      pool.barrier();  // a no-op here
      pool.serial([&] { hits[0] += 10; });  // nested: runs here, and the step stays one thread's
      pool.parallel_for(100, [&](int64_t b, int64_t e) {
        if (std::this_thread::get_id() != serial_thread) other_threads++;
        for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
      });
    });
    pool.parallel_for(100, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) hits[size_t(i)]++; });
  });
  EXPECT_EQ(serial_thread, caller);  // thread 0 is the caller of run_team
  EXPECT_EQ(other_threads.load(), 0);
  EXPECT_EQ(hits[0], 14);
  for (size_t i = 1; i < hits.size(); ++i) EXPECT_EQ(hits[i], 4);
  ASSERT_EQ(run_args.size(), 1u);
  EXPECT_EQ(run_args[0], std::make_pair(0, 1));
}

// An exception thrown on any thread of a region reaches run's caller, after every thread is done with
// the function (it lives on the caller's stack), and the pool works as before afterwards. Thrown on
// each thread in turn, by parallel_for, parallel_for_stealing and run.
TEST(ThreadPool, ARegionsExceptionReachesTheCaller) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int thrower = 0; thrower < threads; ++thrower) {
      std::atomic<int> finished{0};
      try {
        pool.run([&](int ith, int) {
          if (ith == thrower) throw std::runtime_error("thread " + std::to_string(ith));
          std::this_thread::sleep_for(std::chrono::milliseconds(2));  // still running when the other throws
          finished++;
        });
        ADD_FAILURE() << "no exception";
      } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "thread " + std::to_string(thrower));
      }
      EXPECT_EQ(finished.load(), threads - 1);  // every other thread was waited for
    }
    // One chunk throws: the exception comes out; the calls after it cover every index.
    for (int64_t bad : {0, 500, 999}) {
      EXPECT_THROW(pool.parallel_for(1000, [&](int64_t b, int64_t e) {
        if (b <= bad && bad < e) throw std::out_of_range("bad row");
      }), std::out_of_range);
      EXPECT_THROW(pool.parallel_for_stealing(1000, [&](int64_t b, int64_t e) {
        if (b <= bad && bad < e) throw std::out_of_range("bad row");
      }), std::out_of_range);
      std::vector<std::atomic<int>> hits(1000);
      pool.parallel_for(1000, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) hits[size_t(i)]++; });
      pool.parallel_for_stealing(1000, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) hits[size_t(i)]++; });
      for (auto& h : hits) EXPECT_EQ(h.load(), 2);
    }
  }
}

// A team body that throws on one thread, while the others wait for it at a barrier (or are about to):
// run_team rethrows that exception instead of leaving them waiting forever (or ending the process),
// and the next team's barriers, serial steps and stealing work as if nothing had happened. Thrown
// from a serial step, from collective stealing (one take, or every thread's first take: ranges left
// unfinished), and between barriers, by each thread in turn.
TEST(ThreadPool, ATeamBodysExceptionReachesTheCaller) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int where = 0; where < 4; ++where) {
      for (int thrower = 0; thrower < threads; ++thrower) {
        if ((where == 0 || where == 3) && thrower != 0) continue;  // serial steps: thread 0; 3: all throw
        try {
          pool.run_team([&](int ith, int) {
            for (int k = 0; k < 40; ++k) {
              const bool now = k == 17 && ith == thrower;
              if (where == 0) pool.serial([&] { if (now) throw std::runtime_error("serial"); });
              if (where == 1 || where == 3)
                pool.parallel_for_stealing(6400, [&](int64_t b, int64_t) {
                  if (k == 17 && (b == 0 || where == 3)) throw std::runtime_error("stealing");
                });
              if (where == 2) {
                if (now) throw std::runtime_error("between");
                pool.barrier();
              }
              pool.barrier();
            }
          });
          ADD_FAILURE() << "no exception, where " << where;
        } catch (const std::runtime_error& e) {
          EXPECT_EQ(std::string(e.what()), where == 0 ? "serial" : where == 2 ? "between" : "stealing");
        }
        EXPECT_FALSE(pool.in_team());
        // The next team: its serial steps, stealing and barriers line up as in TeamStepsSeeEachOthersWrites.
        std::vector<int> data(300), out(300);
        int errors = 0;
        pool.run_team([&](int, int) {
          for (int k = 0; k < 30; ++k) {
            pool.serial([&] { for (int& d : data) d = k; });
            pool.parallel_for_stealing(300, [&](int64_t b, int64_t e) {
              for (int64_t i = b; i < e; ++i) out[size_t(i)] = data[size_t(i)] + 1;
            });
            pool.serial([&] { for (int o : out) errors += o != k + 1; });
            pool.barrier();
          }
        });
        EXPECT_EQ(errors, 0) << threads << " threads, where " << where << ", thrower " << thrower;
      }
    }
  }
}

}  // namespace
}  // namespace chassis
