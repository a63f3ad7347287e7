#include "engine/bench.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>

#include <immintrin.h>

#include "core/ab_switch.h"
#include "core/memory_stats.h"
#include "core/thread_pool.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "kernels/cpu/dot_avx2.h"

namespace chassis {

Spread spread_of(std::vector<double> v) {
  Spread s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  return s;
}

namespace {
// One thread's share of the probe: 32-byte loads summed in four registers, with the same linear
// software prefetch the matmul kernels use (on the machines we measured the hardware prefetcher alone
// leaves a third of the bandwidth unused, so a probe without it would flatter every roofline ratio).
__attribute__((target("avx2"))) uint64_t read_range_avx2(const uint64_t* p, size_t n) {
  __m256i s[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
  constexpr size_t kAhead = 6144 / sizeof(uint64_t);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm_prefetch(reinterpret_cast<const char*>(p + i + kAhead), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p + i + kAhead + 8), _MM_HINT_T0);
    for (int k = 0; k < 4; ++k)
      s[k] = _mm256_add_epi64(s[k], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4 * k)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(_mm256_add_epi64(s[0], s[1]), _mm256_add_epi64(s[2], s[3])));
  uint64_t sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < n; ++i) sum += p[i];
  return sum;
}
uint64_t read_range(const uint64_t* p, size_t n) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  for (; i < n; ++i) s0 += p[i];
  return s0 + s1 + s2 + s3;
}
}  // namespace

// The probe reads the kind of memory decode streams: pack_weights puts every matrix into a
// PageBuffer (2 MiB pages where the kernel allows). (On the EPYC of docs/performance.md the two kinds
// read alike; where 4 KiB pages cost TLB misses, a probe over them would flatter the fraction.)
ReadBandwidthProbe::ReadBandwidthProbe(int threads, size_t bytes) : threads_(threads), buf_(bytes / sizeof(uint64_t) * sizeof(uint64_t)) {
  uint64_t* p = words();
  for (size_t i = 0; i < n_words(); ++i) p[i] = i;  // touch every page
}

double ReadBandwidthProbe::measure(int passes) {
  const size_t n = n_words();
  const uint64_t* words_begin = words();
  // A pool of its own, gone when the probe is done: its workers must not spin while a run is timed.
  ThreadPool pool(threads_);
  const bool avx2 = cpu_has_avx2();
  double best = 0;
  std::vector<uint64_t> sums(size_t(threads_), 0);
  for (int pass = 0; pass < passes; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.run([&](int ith, int nth) {
      const size_t b = n * size_t(ith) / size_t(nth), e = n * size_t(ith + 1) / size_t(nth);
      // the sum keeps the loads from being optimised away
      sums[size_t(ith)] += avx2 ? read_range_avx2(words_begin + b, e - b) : read_range(words_begin + b, e - b);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, double(n * sizeof(uint64_t)) / s / 1e9);
  }
  return best;
}

double measure_read_bandwidth(int threads) { return ReadBandwidthProbe(threads, size_t(1) << 30).measure(5); }

BenchResult run_bench(const Model& model, const BenchOptions& opt) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  BenchResult r;
  // Per decoded token every matrix is read once; the embedding contributes one row unless it is
  // also the output matrix (tied), in which case it is read whole.
  r.bytes_per_token = w.n_bytes;
  // A decoded token reads n_expert_used of each layer's n_expert experts.
  if (c.n_expert > 0) r.bytes_per_token -= w.n_expert_bytes / uint64_t(c.n_expert) * uint64_t(c.n_expert - c.n_expert_used);
  if (!w.tied_output) r.bytes_per_token -= uint64_t(w.token_embd.row_stride() * (w.token_embd.n_out - 1));

  Session session(model, opt.n_prompt + opt.n_gen + 1, opt.threads);
  std::vector<int32_t> prompt(size_t(opt.n_prompt));
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 7919 + 13) % uint64_t(c.n_vocab));
  // Warm-up (untimed): the first pass faults the mmapped weights into memory.
  std::vector<int32_t> warm(prompt.begin(), prompt.begin() + std::min<int64_t>(opt.n_prompt, 8));
  if (warm.empty()) warm.push_back(0);
  session.evaluate(warm, 0);
  // Per side (0: A, the switch off; 1: B): each repetition's prefill and decode speeds, probe and fraction.
  std::vector<double> pp[2], tg[2], bandwidth[2], fraction[2];
  std::string sides;
  {
    // The bandwidth is probed right before and right after each decode measurement, and each
    // measurement's roofline fraction taken against the larger of its two probes: on a shared host
    // the bandwidth left to us moves by half within minutes (one probe after all the runs made the
    // fraction a draw: 35 to 58 GB/s probed around the same decode speed), and within seconds (one
    // probe before each run put decode at 101-115 % of it when the machine sped up meanwhile).
    std::optional<ReadBandwidthProbe> probe;
    if (opt.n_gen > 0) probe.emplace(opt.threads);
    const int runs = opt.ab ? 2 * opt.repetitions : opt.repetitions;
    for (int rep = 0; rep < runs; ++rep) {
      if (opt.ab) set_ab_switch(rep % 4 == 1 || rep % 4 == 2);  // A B B A
      const int side = ab_switch_on() ? 1 : 0;
      sides += side ? 'B' : 'A';
      auto t0 = std::chrono::steady_clock::now();
      if (opt.n_prompt > 0) session.evaluate(prompt, 0);
      auto t1 = std::chrono::steady_clock::now();
      if (opt.n_prompt > 0) pp[side].push_back(double(opt.n_prompt) / std::chrono::duration<double>(t1 - t0).count());
      if (opt.n_gen == 0) continue;
      const double before = probe->measure(3);
      t1 = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < opt.n_gen; ++i) session.evaluate({int32_t((i * 31 + 7) % c.n_vocab)}, opt.n_prompt + i);
      auto t2 = std::chrono::steady_clock::now();
      tg[side].push_back(double(opt.n_gen) / std::chrono::duration<double>(t2 - t1).count());
      bandwidth[side].push_back(std::max(before, probe->measure(3)));
      fraction[side].push_back(tg[side].back() * double(r.bytes_per_token) / (bandwidth[side].back() * 1e9));
    }
    if (opt.ab) set_ab_switch(false);
  }
  r.prefill_tok_s = spread_of(pp[0]);
  r.decode_tok_s = spread_of(tg[0]);
  if (opt.ab) {
    // Repetitions 2k and 2k + 1 are one pair (A B or B A): B/A of each, then the median.
    auto paired_ratio = [](const std::vector<double>& a, const std::vector<double>& b) {
      std::vector<double> ratios;
      for (size_t k = 0; k < std::min(a.size(), b.size()); ++k) ratios.push_back(b[k] / a[k]);
      return spread_of(ratios).median;
    };
    AbSide ab;
    ab.prefill_tok_s = spread_of(pp[1]);
    ab.decode_tok_s = spread_of(tg[1]);
    ab.prefill_ratio = paired_ratio(pp[0], pp[1]);
    ab.decode_ratio = paired_ratio(tg[0], tg[1]);
    ab.roofline_fraction = spread_of(fraction[1]).median;
    ab.sides = sides;
    r.ab = ab;
  }
  r.weights_bytes = w.n_bytes;
  r.kv_bytes = session.kv_bytes();
  r.scratch_bytes = session.scratch_bytes();
  r.rss_bytes = resident_bytes();  // the probe's buffer is freed by now
  if (bandwidth[0].empty()) bandwidth[0].push_back(measure_read_bandwidth(opt.threads));
  r.bandwidth_gb_s = spread_of(bandwidth[0]).median;
  r.roofline_fraction = spread_of(fraction[0]).median;
  return r;
}

}  // namespace chassis
