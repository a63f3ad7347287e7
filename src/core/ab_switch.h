// The switch of an in-process A/B measurement (`chassis bench --ab`). Code on trial reads
// ab_switch_on() and takes its new path while the switch is on; the bench turns it on and off
// between repetitions (A B B A ...), so both sides run in one process, on the same mapped weights,
// turn about within seconds of each other.
//
// Why in one process: the shared hosts we measure on move their memory bandwidth by a third within
// minutes, and separate processes also differ in where their pages land. A 512-bit Q4_0 decode tile
// measured +8 % against the old one in alternating processes (bench/ab_bench.py, six turns) and
// -1.7 % to +0.6 % in three one-process runs (docs/performance.md). Nothing reads the switch outside
// such a trial: it is off, and a trial's reads of it are removed when the trial is decided.
#pragma once
#include <atomic>

namespace chassis {

namespace detail {
inline std::atomic<bool> g_ab_switch{false};
}

inline bool ab_switch_on() { return detail::g_ab_switch.load(std::memory_order_relaxed); }
inline void set_ab_switch(bool on) { detail::g_ab_switch.store(on, std::memory_order_relaxed); }

}  // namespace chassis
