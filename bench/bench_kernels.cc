// Micro-benchmarks of the matmul kernels (run by hand; never part of the tests):
//   build/bench_kernels [--benchmark_filter=Q4_K]
// Each case multiplies a weight matrix larger than the caches (so decode cases stream it from RAM,
// as a decode step does) by 1 token (decode) or 64 tokens (prefill), with the AVX2 tiles and with
// the one-dot-at-a-time path they replaced, and reports bytes of weights per second.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/quants.h"

namespace chassis {
namespace {

// Valid random rows of any type: quantized from normal floats where a quantizer exists, else random
// bytes with small finite fp16 scales (what the kernels read is all that matters for speed).
std::vector<uint8_t> random_weights(DType t, int64_t n_in, int64_t n_out) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t rb = row_bytes(t, n_in);
  std::vector<uint8_t> w(size_t(rb * n_out));
  std::vector<float> row(static_cast<size_t>(n_in));
  for (int64_t r = 0; r < n_out; ++r) {
    for (auto& v : row) v = dist(rng);
    uint8_t* dst = w.data() + r * rb;
    if (t == DType::Q4_K) {
      for (int64_t b = 0; b < n_in / QK_K; ++b)
        quantize_block_q4_k(row.data() + b * QK_K, reinterpret_cast<BlockQ4_K*>(dst) + b);
    } else if (t == DType::Q6_K) {
      for (int64_t b = 0; b < n_in / QK_K; ++b)
        quantize_block_q6_k(row.data() + b * QK_K, reinterpret_cast<BlockQ6_K*>(dst) + b);
    } else {
      quantize_row(t, row.data(), dst, n_in);
    }
  }
  return w;
}

void run_matmul(benchmark::State& state, DType t, int64_t n_in, int64_t n_out) {  // NOLINT
  const int64_t n_tok = state.range(0);
  const int threads = int(state.range(1));
  const bool reference_order = state.range(2) != 0;  // 1: one dot product at a time
  if (state.range(3) != 0) n_out = 512;                // hot: a matrix that stays in L2
  static std::vector<uint8_t> w;
  static DType cached = DType::F32;
  if (w.empty() || cached != t || int64_t(w.size()) != row_bytes(t, n_in) * n_out) {
    w = random_weights(t, n_in, n_out);
    cached = t;
  }
  WeightMatrix m{t, w.data(), n_in, n_out};
  std::vector<float> x(size_t(n_in * n_tok)), y(size_t(n_out * n_tok));
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (auto& v : x) v = dist(rng);
  ThreadPool pool(threads);
  set_matmul_tiles_enabled(!reference_order);
  for (auto _ : state) {
    matmul(m, x.data(), n_tok, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  set_matmul_tiles_enabled(true);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(w.size()));
  state.counters["tok/s"] = benchmark::Counter(double(n_tok) * double(state.iterations()), benchmark::Counter::kIsRate);
}

// Qwen2.5-0.5B's widest decode matrix shapes: the FFN (896 -> 4864 and back) repeated to ~100+ MB.
void args(benchmark::internal::Benchmark* b) {
  for (int64_t hot : {0, 1})
    for (int64_t tok : {1, 64})
      for (int64_t th : {1, 2})
        for (int64_t ref : {0, 1}) b->Args({tok, th, ref, hot});
  b->ArgNames({"tok", "threads", "dot_path", "hot"})->UseRealTime()->Unit(benchmark::kMillisecond);
}

#define CHASSIS_MATMUL_BENCH(TYPE, N_IN, N_OUT)                                                   \
  void BM_Matmul_##TYPE(benchmark::State& s) { run_matmul(s, DType::TYPE, N_IN, N_OUT); }        \
  BENCHMARK(BM_Matmul_##TYPE)->Apply(args)

CHASSIS_MATMUL_BENCH(F16, 2048, 32768);
CHASSIS_MATMUL_BENCH(Q8_0, 896, 131072);
CHASSIS_MATMUL_BENCH(Q5_0, 896, 131072);
CHASSIS_MATMUL_BENCH(Q4_0, 2048, 98304);
CHASSIS_MATMUL_BENCH(Q4_K, 2048, 65536);
CHASSIS_MATMUL_BENCH(Q6_K, 2048, 49152);

}  // namespace
}  // namespace chassis

BENCHMARK_MAIN();
