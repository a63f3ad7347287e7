// Micro-benchmarks of the SIMD kernels against their scalar references (run by hand; never part of
// the tests):   build/bench_kernels [--benchmark_filter=Q4_K]
// Each case multiplies a weight matrix larger than the caches (so decode cases stream it from RAM,
// as a decode step does) by 1 token (decode) or 64 tokens (prefill), with the AVX2 tiles and with
// the one-dot-at-a-time path they replaced, and reports bytes of weights per second.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "core/thread_pool.h"
#include "kernels/cpu/attention_avx2.h"
#include "kernels/cpu/ops_avx2.h"
#include "kernels/interleave.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
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
    } else if (t == DType::Q5_K) {
      for (int64_t b = 0; b < n_in / QK_K; ++b)
        quantize_block_q5_k(row.data() + b * QK_K, reinterpret_cast<BlockQ5_K*>(dst) + b);
    } else if (t == DType::Q6_K) {
      for (int64_t b = 0; b < n_in / QK_K; ++b)
        quantize_block_q6_k(row.data() + b * QK_K, reinterpret_cast<BlockQ6_K*>(dst) + b);
    } else if (can_quantize(t)) {
      quantize_row(t, row.data(), dst, n_in);
    } else {  // no quantizer (Q2_K, Q3_K): random bytes, each block's fp16 scales made small and finite
      for (int64_t k = 0; k < rb; ++k) dst[k] = uint8_t(rng());
      const uint16_t scale = f32_to_f16(0.01f);
      const int64_t bb = dtype_info(t).block_bytes;
      for (int64_t b = 0; b < rb / bb; ++b) {  // d (and Q2_K's dmin) end the block
        std::memcpy(dst + (b + 1) * bb - 2, &scale, 2);
        if (t == DType::Q2_K) std::memcpy(dst + (b + 1) * bb - 4, &scale, 2);
      }
    }
  }
  return w;
}

// path: 0 tiles, 1 one dot product at a time, 2 interleaved tiles.
void run_matmul_shape(benchmark::State& state, DType t, int64_t n_in, int64_t n_out, int64_t n_tok, int threads,
                      int64_t path) {
  static std::vector<uint8_t> w;
  static DType cached = DType::F32;
  static int64_t cached_n_in = 0;
  if (w.empty() || cached != t || cached_n_in != n_in || int64_t(w.size()) != row_bytes(t, n_in) * n_out) {
    w = random_weights(t, n_in, n_out);
    cached = t;
    cached_n_in = n_in;
  }
  WeightMatrix m{t, w.data(), n_in, n_out};
  std::vector<uint8_t> packed;
  if (path == 2) {
    packed.resize(size_t(interleaved_group_bytes(t, n_in) * (n_out / kInterleavedRows)));
    interleave_rows(t, w.data(), n_in, 0, n_out / kInterleavedRows, packed.data());
    m.data = packed.data();
    m.interleaved = true;
  }
  std::vector<float> x(size_t(n_in * n_tok)), y(size_t(n_out * n_tok));
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (auto& v : x) v = dist(rng);
  ThreadPool pool(threads);
  set_matmul_tiles_enabled(path != 1);
  for (auto _ : state) {
    matmul(m, x.data(), n_tok, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  set_matmul_tiles_enabled(true);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(w.size()));
  state.counters["tok/s"] = benchmark::Counter(double(n_tok) * double(state.iterations()), benchmark::Counter::kIsRate);
}

void run_matmul(benchmark::State& state, DType t, int64_t n_in, int64_t n_out) {  // NOLINT
  // range: tokens, threads, path, hot (a matrix that stays in L2)
  run_matmul_shape(state, t, n_in, state.range(3) != 0 ? 512 : n_out, state.range(0), int(state.range(1)), state.range(2));
}

// Qwen2.5-0.5B's widest decode matrix shapes: the FFN (896 -> 4864 and back) repeated to ~100+ MB.
// path: 0 the tiles on GGUF rows, 1 one dot product at a time, 2 the tiles on interleaved rows.
void args_with_paths(benchmark::internal::Benchmark* b, std::initializer_list<int64_t> paths) {
  for (int64_t hot : {0, 1})
    for (int64_t tok : {1, 64})
      for (int64_t th : {1, 2})
        for (int64_t path : paths) b->Args({tok, th, path, hot});
  b->ArgNames({"tok", "threads", "path", "hot"})->UseRealTime()->Unit(benchmark::kMillisecond);
}
void args(benchmark::internal::Benchmark* b) { args_with_paths(b, {0, 1}); }
void args_interleaved(benchmark::internal::Benchmark* b) { args_with_paths(b, {0, 1, 2}); }

#define CHASSIS_MATMUL_BENCH(TYPE, N_IN, N_OUT)                                                   \
  void BM_Matmul_##TYPE(benchmark::State& s) { run_matmul(s, DType::TYPE, N_IN, N_OUT); }        \
  BENCHMARK(BM_Matmul_##TYPE)->Apply(can_interleave(DType::TYPE) ? args_interleaved : args)

CHASSIS_MATMUL_BENCH(F16, 2048, 32768);
CHASSIS_MATMUL_BENCH(BF16, 2048, 32768);
CHASSIS_MATMUL_BENCH(Q8_0, 896, 131072);
CHASSIS_MATMUL_BENCH(Q5_0, 896, 131072);
CHASSIS_MATMUL_BENCH(Q4_1, 2048, 98304);
CHASSIS_MATMUL_BENCH(Q5_1, 896, 131072);
CHASSIS_MATMUL_BENCH(Q4_0, 2048, 98304);
CHASSIS_MATMUL_BENCH(Q4_K, 2048, 65536);
CHASSIS_MATMUL_BENCH(Q5_K, 2048, 57344);
CHASSIS_MATMUL_BENCH(Q6_K, 2048, 49152);
CHASSIS_MATMUL_BENCH(Q3_K, 2048, 98304);
CHASSIS_MATMUL_BENCH(Q2_K, 2048, 131072);

// Decode on wide rows (down projections: Qwen2.5-0.5B's 4864 inputs, Llama-3.2-1B's 8192; every
// matrix of a 7B+ model is 4096+ wide) against the same bytes in 2048-wide rows. On the Zen 5 host of
// stop 23, Q4_0 and Q8_0 streamed their wide rows 10-30 % slower in some runs (the token's
// activations no longer stay in L1 between two groups' reads; see docs/performance.md), Q4_K and
// Q6_K not; the host's noise kept it from a firm number. path: 2 (interleaved) where the type can be.
void args_wide(benchmark::internal::Benchmark* b) {
  for (int64_t n_in : {2048, 4864, 8192})
    for (int64_t th : {1, 2}) b->Args({n_in, th});
  b->ArgNames({"n_in", "threads"})->UseRealTime()->Unit(benchmark::kMillisecond);
}
#define CHASSIS_MATMUL_WIDE_BENCH(TYPE, MIB)                                                         \
  void BM_MatmulWide_##TYPE(benchmark::State& s) {                                                   \
    const int64_t n_in = s.range(0), n_out = (int64_t(MIB) << 20) / row_bytes(DType::TYPE, n_in) / 16 * 16; \
    run_matmul_shape(s, DType::TYPE, n_in, n_out, 1, int(s.range(1)), can_interleave(DType::TYPE) ? 2 : 0); \
  }                                                                                                  \
  BENCHMARK(BM_MatmulWide_##TYPE)->Apply(args_wide)
CHASSIS_MATMUL_WIDE_BENCH(Q4_0, 112);
CHASSIS_MATMUL_WIDE_BENCH(Q8_0, 112);
CHASSIS_MATMUL_WIDE_BENCH(Q4_K, 112);
CHASSIS_MATMUL_WIDE_BENCH(Q6_K, 112);

}  // namespace
}  // namespace chassis


// The other SIMD kernels against their scalar references, on Qwen2.5-0.5B-sized inputs.
namespace chassis {
namespace {

std::vector<float> normal_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Attention of one query head over 512 cached positions (head size 64), key by key (decode) or tiled
// (prefill); range(0): 1 = SIMD, 0 = reference; range(1): 1 = tiled.
void BM_Attention(benchmark::State& state) {
  const bool simd = state.range(0) != 0, tiled = state.range(1) != 0;
  const int d = 64;
  const int64_t n_kv = 512;
  auto kf = normal_floats(size_t(n_kv * d), 1), vf = normal_floats(size_t(n_kv * d), 2), q = normal_floats(size_t(d), 3);
  std::vector<uint16_t> k(kf.size()), v(vf.size());
  for (size_t i = 0; i < kf.size(); ++i) { k[i] = f32_to_f16(kf[i]); v[i] = f32_to_f16(vf[i]); }
  const int32_t block0 = 0;
  const KvRows kr{k.data(), &block0, n_kv, 0, d}, vr{v.data(), &block0, n_kv, 0, d};
  AttentionParams p{d, 0.125f};
  p.tiled = tiled;
  std::vector<float> out(static_cast<size_t>(d)), scores(static_cast<size_t>(n_kv));
  for (auto _ : state) {
    if (!simd || !attend_one_avx2(q.data(), kr, vr, 0, n_kv, out.data(), p)) attend_one(q.data(), kr, vr, 0, n_kv, out.data(), scores.data(), p);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * n_kv);  // keys per second
}
BENCHMARK(BM_Attention)->ArgsProduct({{0, 1}, {0, 1}})->ArgNames({"simd", "tiled"});

// Decode attention of a GQA group of query heads over 512 cached positions: the heads one at a time
// (range(0) = 0) or together (1, attend_heads_avx2 in chunks of its maximum). range(1): head size,
// range(2): heads in the group (Qwen2.5-0.5B: 64 and 7; Llama-3.2-1B: 64 and 4; Llama-3-8B: 128, 4).
void BM_AttentionGroup(benchmark::State& state) {
  const bool grouped = state.range(0) != 0;
  const int d = int(state.range(1)), heads = int(state.range(2));
  const int64_t n_kv = 512;
  auto kf = normal_floats(size_t(n_kv * d), 1), vf = normal_floats(size_t(n_kv * d), 2);
  auto q = normal_floats(size_t(heads * d), 3);
  std::vector<uint16_t> k(kf.size()), v(vf.size());
  for (size_t i = 0; i < kf.size(); ++i) { k[i] = f32_to_f16(kf[i]); v[i] = f32_to_f16(vf[i]); }
  const int32_t block0 = 0;
  const KvRows kr{k.data(), &block0, n_kv, 0, d}, vr{v.data(), &block0, n_kv, 0, d};
  const AttentionParams p{d, 1.0f / std::sqrt(float(d))};
  const int hmax = attend_heads_max(kr, p);
  if (grouped && hmax == 0) {
    state.SkipWithError("no grouped-heads kernel on this CPU for this head size");
    return;
  }
  std::vector<float> out(size_t(heads * d));
  for (auto _ : state) {
    if (grouped) {
      const HeadChunks chunks(heads, hmax);
      for (int64_t c = 0; c < chunks.count; ++c) {
        const int64_t h0 = chunks.first(c), h1 = chunks.end(c);
        attend_heads_avx2(int(h1 - h0), q.data() + h0 * d, d, kr, vr, 0, n_kv, out.data() + h0 * d, d, p);
      }
    } else {
      for (int h = 0; h < heads; ++h) attend_one_avx2(q.data() + h * d, kr, vr, 0, n_kv, out.data() + h * d, p);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * n_kv * heads);  // key-heads per second
}
BENCHMARK(BM_AttentionGroup)->ArgsProduct({{0, 1}, {64}, {7, 4, 1}})->Args({0, 128, 4})->Args({1, 128, 4})->Args({0, 128, 1})->Args({1, 128, 1})
    ->ArgNames({"grouped", "d", "heads"});

// Prefill attention of one job as the transformer makes them: a GQA group's heads (range(1)) for
// range(2) consecutive rows ending at position 512 (causal), head size 64: query by query through the
// tiled AVX2 kernel (range(0) = 0) or all at once through attend_tiled_batch (1: AVX-512 where the
// CPU has it; 2: its AVX2 body).
void BM_AttentionTiledBatch(benchmark::State& state) {
  const int64_t kernel = state.range(0);
  const bool batch = kernel != 0;
  const int d = 64, heads = int(state.range(1)), rows = int(state.range(2));
  const int64_t n_kv = 512;
  auto kf = normal_floats(size_t(n_kv * d), 1), vf = normal_floats(size_t(n_kv * d), 2);
  auto q = normal_floats(size_t(rows * heads * d), 3);
  std::vector<uint16_t> k(kf.size()), v(vf.size());
  for (size_t i = 0; i < kf.size(); ++i) { k[i] = f32_to_f16(kf[i]); v[i] = f32_to_f16(vf[i]); }
  const int32_t block0 = 0;
  const KvRows kr{k.data(), &block0, n_kv, 0, d}, vr{v.data(), &block0, n_kv, 0, d};
  const AttentionParams p{d, 1.0f / std::sqrt(float(d)), 0.0f, /*tiled=*/true};
  if (batch && !attend_tiled_batch_supported(kr, p)) {
    state.SkipWithError("no tiled batch kernel on this CPU");
    return;
  }
  std::vector<float> out(q.size());
  std::vector<TiledQuery> queries;
  for (int r = 0; r < rows; ++r)
    for (int h = 0; h < heads; ++h) {
      const size_t at = size_t((r * heads + h) * d);
      queries.push_back({q.data() + at, out.data() + at, 0, n_kv - rows + 1 + r});
    }
  for (auto _ : state) {
    if (kernel == 2) attend_tiled_batch_avx2(queries, kr, vr, p);
    else if (batch) attend_tiled_batch(queries, kr, vr, p);
    else for (const TiledQuery& x : queries) attend_one_avx2(x.q, kr, vr, x.kv_begin, x.kv_end, x.out, p);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * n_kv * rows * heads);  // key-queries per second
}
BENCHMARK(BM_AttentionTiledBatch)->ArgsProduct({{0, 1, 2}, {7, 4}, {8}})->Args({1, 1, 8})->Args({1, 1, 16})->Args({1, 1, 32})->Args({1, 7, 1})->Args({1, 4, 1})
    ->ArgNames({"batch", "heads", "rows"});

// SwiGLU over one FFN row (4864) and activation quantization of one row (Q8_0: 896, Q8_K: 2048).
void BM_Swiglu(benchmark::State& state) {
  const bool simd = state.range(0) != 0;
  const int64_t n = 4864;
  auto g = normal_floats(size_t(n), 4), u = normal_floats(size_t(n), 5);
  std::vector<float> out(static_cast<size_t>(n));
  for (auto _ : state) {
    (simd ? swiglu_avx2 : swiglu)(g.data(), u.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * n);
}
BENCHMARK(BM_Swiglu)->Arg(0)->Arg(1)->ArgName("simd");

void BM_QuantizeActivations(benchmark::State& state) {
  const bool simd = state.range(0) != 0;
  const DType t = state.range(1) != 0 ? DType::Q8_K : DType::Q8_0;
  const int64_t n = t == DType::Q8_K ? 2048 : 896;
  auto x = normal_floats(size_t(n), 6);
  std::vector<uint8_t> out(size_t(row_bytes(t, n)));
  for (auto _ : state) {
    if (!simd || !quantize_row_avx2(t, x.data(), out.data(), n)) quantize_row(t, x.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * n);
}
BENCHMARK(BM_QuantizeActivations)->ArgsProduct({{0, 1}, {0, 1}})->ArgNames({"simd", "q8_k"});

// One token's RoPE for a Qwen2.5-0.5B layer (14 q heads + 2 k heads of 64): the angles (libm's cos
// and sin, once per pass since they are shared by every layer) or the rotations alone, scalar or FMA.
void BM_Rope(benchmark::State& state) {
  const bool simd = state.range(0) != 0, angles = state.range(1) != 0;
  RopeParams p;
  p.n_rot = 64;
  p.style = RopeStyle::NeoX;
  p.freq_base = 1000000.0f;
  auto q = normal_floats(14 * 64, 7), k = normal_floats(2 * 64, 8);
  std::vector<float> cs(32), sn(32);
  int pos = 0;
  for (auto _ : state) {
    if (angles) rope_angles(pos++ % 4096, p, cs.data(), sn.data());
    (simd ? rope_rotate_avx2 : rope_rotate)(q.data(), 14, 64, p, cs.data(), sn.data());
    (simd ? rope_rotate_avx2 : rope_rotate)(k.data(), 2, 64, p, cs.data(), sn.data());
    benchmark::DoNotOptimize(q.data());
  }
}
BENCHMARK(BM_Rope)->ArgsProduct({{0, 1}, {0, 1}})->ArgNames({"simd", "angles"});

// Activations rounded to f16 and back, as F16 weights' tiles read them (a Llama-3.2-1B row).
void BM_RoundF16(benchmark::State& state) {
  const bool simd = state.range(0) != 0;
  const int64_t n = 2048;
  auto x = normal_floats(size_t(n), 9);
  std::vector<float> out(static_cast<size_t>(n));
  for (auto _ : state) {
    if (simd) round_f16_avx2(x.data(), out.data(), n);
    else for (int64_t i = 0; i < n; ++i) out[size_t(i)] = round_f16(x[size_t(i)]);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * n);
}
BENCHMARK(BM_RoundF16)->Arg(0)->Arg(1)->ArgName("simd");

// One token's k and v rows into the f16 KV cache (Llama-3.2-1B: 8 kv heads of 64, twice).
void BM_KvToF16(benchmark::State& state) {
  const bool simd = state.range(0) != 0;
  const int64_t n = 2 * 512;
  auto x = normal_floats(size_t(n), 10);
  std::vector<uint16_t> out(static_cast<size_t>(n));
  for (auto _ : state) {
    (simd ? f32_to_f16_row_avx2 : f32_to_f16_row)(x.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * n);
}
BENCHMARK(BM_KvToF16)->Arg(0)->Arg(1)->ArgName("simd");

}  // namespace
}  // namespace chassis

BENCHMARK_MAIN();
