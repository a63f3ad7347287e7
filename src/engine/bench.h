// Throughput measurement: prefill and decode tokens/s over repetitions, the weight bytes a decoded
// token reads, and the machine's read bandwidth, so speed can be stated as a fraction of the roofline.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/page_buffer.h"

namespace chassis {

class Model;

struct Spread {
  double median = 0, min = 0, max = 0;
};
Spread spread_of(std::vector<double> samples);

struct BenchOptions {
  int64_t n_prompt = 512;
  int64_t n_gen = 128;
  int threads = 2;
  int repetitions = 5;
  // In-process A/B (core/ab_switch.h): `repetitions` with the switch off (A) and as many with it on
  // (B), in the order A B B A A B B A ..., so a drift of the host's speed falls on both sides alike.
  bool ab = false;
};

// The B side of an A/B run, and B/A as the median over the repetitions' pairs (A B, then B A, ...):
// a pair ran seconds apart, so its ratio carries less of the host's drift than a ratio of medians.
struct AbSide {
  Spread prefill_tok_s, decode_tok_s;
  double prefill_ratio = 0, decode_ratio = 0;
  double roofline_fraction = 0;
  std::string sides;  // the switch as each repetition found it: "ABBAAB..."
};

struct BenchResult {
  Spread prefill_tok_s, decode_tok_s;
  uint64_t bytes_per_token = 0;  // weights read per decoded token (KV cache reads not included)
  double bandwidth_gb_s = 0;      // median over decode measurements of the larger probe before and after each
  double roofline_fraction = 0;  // median over repetitions of decode tok/s * bytes_per_token / that one's larger probe
  // The memory plan, and what the run really held (resident set after the timed runs, without the
  // bandwidth probe's buffer).
  uint64_t weights_bytes = 0, kv_bytes = 0, scratch_bytes = 0, rss_bytes = 0;
  // With BenchOptions::ab: the fields above are side A (the switch off), this is side B.
  std::optional<AbSide> ab;
};

// Read bandwidth of this machine with `threads` threads, in GB/s: the best of `passes` passes over a
// buffer larger than any cache (touched once, at construction).
class ReadBandwidthProbe {
 public:
  explicit ReadBandwidthProbe(int threads, size_t bytes = size_t(512) << 20);
  double measure(int passes);

 private:
  uint64_t* words() const { return reinterpret_cast<uint64_t*>(buf_.data()); }
  size_t n_words() const { return buf_.size() / sizeof(uint64_t); }

  int threads_;
  PageBuffer buf_;  // the memory kind the packed weights live in (huge pages where the kernel gives them)
};
// One probe: best of five passes over 1 GiB.
double measure_read_bandwidth(int threads);

BenchResult run_bench(const Model& model, const BenchOptions& opt);

}  // namespace chassis
