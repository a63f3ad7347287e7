// Kernels against plain double-precision formulas written here from the math (not from our code):
// RMSNorm, rope as a complex rotation, softmax, attention, and the threaded matmul. (The pool's
// splitting: test_thread_pool.cc.)
#include <gtest/gtest.h>

#include <array>
#include <algorithm>
#include <cmath>
#include <complex>
#include <iterator>
#include <limits>

#include "core/fp16.h"
#include "core/page_buffer.h"
#include "core/thread_pool.h"
#include "kernels/cpu/attention_avx2.h"
#include "kernels/cpu/dot_avx2.h"
#include "kernels/cpu/matmul_avx2.h"
#include "kernels/cpu/ops_avx2.h"
#include "kernels/interleave.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/quants.h"
#include "test_util.h"

namespace chassis {
namespace {

using test::random_floats;

TEST(Kernels, RmsNormMatchesFormula) {
  for (int n : {1, 7, 64, 257}) {
    auto x = random_floats(size_t(n), uint32_t(n));
    auto w = random_floats(size_t(n), uint32_t(n) + 1);
    std::vector<float> y(static_cast<size_t>(n));
    rms_norm(x.data(), w.data(), y.data(), n, 1e-5f);
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    const double inv = 1.0 / std::sqrt(ss / n + 1e-5);
    for (int i = 0; i < n; ++i) EXPECT_NEAR(y[size_t(i)], x[size_t(i)] * inv * w[size_t(i)], 1e-5 * (1 + std::fabs(y[size_t(i)])));
  }
}

TEST(Kernels, RopeIsComplexRotation) {
  for (auto style : {RopeStyle::Normal, RopeStyle::NeoX}) {
    for (int n_rot : {8, 64}) {
      const int head_dim = 64, n_head = 3, pos = 37;
      auto x = random_floats(size_t(head_dim * n_head), 3);
      std::vector<float> factors(size_t(n_rot / 2), 1.0f);
      factors[1] = 4.0f;
      RopeParams p;
      p.n_rot = n_rot;
      p.freq_base = 10000.f;
      p.freq_scale = 0.5f;
      p.freq_factors = factors.data();
      p.style = style;
      auto y = x;
      rope(y.data(), n_head, head_dim, pos, p);
      for (int h = 0; h < n_head; ++h) {
        for (int i = 0; i < n_rot / 2; ++i) {
          const int a = style == RopeStyle::Normal ? 2 * i : i;
          const int b = style == RopeStyle::Normal ? 2 * i + 1 : i + n_rot / 2;
          const double theta = 0.5 * pos * std::pow(10000.0, -2.0 * i / n_rot) / factors[size_t(i)];
          const std::complex<double> z(x[size_t(h * head_dim + a)], x[size_t(h * head_dim + b)]);
          const auto r = z * std::polar(1.0, theta);
          EXPECT_NEAR(y[size_t(h * head_dim + a)], r.real(), 2e-4);
          EXPECT_NEAR(y[size_t(h * head_dim + b)], r.imag(), 2e-4);
        }
        for (int i = n_rot; i < head_dim; ++i) EXPECT_EQ(y[size_t(h * head_dim + i)], x[size_t(h * head_dim + i)]);
      }
    }
  }
}

// YaRN: pair i turns by a blend of the original angle (weight 1 below corr_dims[0], 0 above corr_dims[1],
// linear between) and the angle interpolated by freq_scale, and grows by attn_factor (1 + 0.1 ln(1/s)).
TEST(Kernels, RopeYarnBlendsOriginalAndInterpolatedAngles) {
  const int head_dim = 64, n_rot = 64, pos = 301;
  auto x = random_floats(size_t(head_dim), 5);
  RopeParams p;
  p.n_rot = n_rot;
  p.freq_base = 10000.f;
  p.freq_scale = 0.25f;
  p.style = RopeStyle::NeoX;
  p.ext_factor = 1.0f;
  p.attn_factor = 0.9f;
  p.corr_dims[0] = 2;
  p.corr_dims[1] = 10;
  auto y = x;
  rope(y.data(), 1, head_dim, pos, p);
  const double mscale = 0.9 * (1 + 0.1 * std::log(4.0));
  for (int i = 0; i < n_rot / 2; ++i) {
    const double original = pos * std::pow(10000.0, -2.0 * i / n_rot);
    const double keep = 1 - std::clamp((i - 2.0) / 8.0, 0.0, 1.0);
    const double theta = 0.25 * original * (1 - keep) + original * keep;
    const auto r = std::complex<double>(x[size_t(i)], x[size_t(i + n_rot / 2)]) * std::polar(mscale, theta);
    EXPECT_NEAR(y[size_t(i)], r.real(), 2e-4) << i;
    EXPECT_NEAR(y[size_t(i + n_rot / 2)], r.imag(), 2e-4) << i;
  }
}

TEST(Kernels, SoftmaxSumsToOne) {
  auto x = random_floats(1001, 4, 10.0f);
  auto y = x;
  softmax(y.data(), int64_t(y.size()));
  double mx = -INFINITY, z = 0, sum = 0;
  for (float v : x) mx = std::max(mx, double(v));
  for (float v : x) z += std::exp(v - mx);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(y[i], std::exp(x[i] - mx) / z, 1e-6);
    sum += y[i];
  }
  EXPECT_NEAR(sum, 1.0, 1e-5);
}

TEST(Kernels, GatedActivations) {
  auto g = random_floats(77, 5, 3.0f), u = random_floats(77, 6);
  std::vector<float> s(77), ge(77);
  swiglu(g.data(), u.data(), s.data(), 77);
  geglu(g.data(), u.data(), ge.data(), 77);
  for (size_t i = 0; i < 77; ++i) {
    const double x = g[i];
    EXPECT_NEAR(s[i], x / (1 + std::exp(-x)) * u[i], 1e-5);
    const double gelu = 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    EXPECT_NEAR(ge[i], gelu * u[i], 2e-3 * (1 + std::fabs(gelu * u[i])));  // f16-rounded like the reference
  }
}

TEST(Kernels, AttentionMatchesNaiveSoftmaxAttention) {
  const int d = 64, n_kv = 37, kv_heads = 2;
  const int64_t stride = d * kv_heads;
  auto kf = random_floats(size_t(n_kv * stride), 7), vf = random_floats(size_t(n_kv * stride), 8);
  std::vector<uint16_t> k(kf.size()), v(vf.size());
  for (size_t i = 0; i < kf.size(); ++i) { k[i] = f32_to_f16(kf[i]); v[i] = f32_to_f16(vf[i]); }
  auto q = random_floats(size_t(d), 9);
  for (float cap : {0.0f, 5.0f}) {
    for (int64_t begin : {0, 10}) {
      AttentionParams p{d, 0.125f, cap};
      std::vector<float> out(static_cast<size_t>(d)), scratch(static_cast<size_t>(n_kv));
      const int32_t one_block = 0;
      const KvRows kr{k.data() + d, &one_block, n_kv, 0, stride}, vr{v.data() + d, &one_block, n_kv, 0, stride};
      attend_one(q.data(), kr, vr, begin, n_kv, out.data(), scratch.data(), p);
      std::vector<double> s;
      double mx = -INFINITY;
      for (int j = int(begin); j < n_kv; ++j) {
        double dot = 0;
        for (int i = 0; i < d; ++i) dot += double(q[size_t(i)]) * f16_to_f32(k[size_t(j * stride + d + i)]);
        dot *= 0.125;
        if (cap > 0) dot = cap * std::tanh(dot / cap);
        s.push_back(dot);
        mx = std::max(mx, dot);
      }
      double z = 0;
      for (double& x : s) z += (x = std::exp(x - mx));
      for (int i = 0; i < d; ++i) {
        double o = 0;
        for (size_t j = 0; j < s.size(); ++j) o += s[j] / z * f16_to_f32(v[size_t((begin + int64_t(j)) * stride + d + i)]);
        EXPECT_NEAR(out[size_t(i)], o, 3e-3 * (1 + std::fabs(o)));  // q and the accumulator are f16, as in llama.cpp
      }
    }
  }
}

TEST(Kernels, ThreadedMatmulMatchesDirectDotForOddShapes) {
  ThreadPool pool(3);
  for (DType t : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_K}) {
    const int64_t n_in = dtype_info(t).block_size == 1 ? 67 : 512, n_out = 13, n_tok = 5;
    auto wf = random_floats(size_t(n_in * n_out), 10);
    std::vector<uint8_t> w(size_t(row_bytes(t, n_in) * n_out));
    if (can_quantize(t)) {
      for (int64_t r = 0; r < n_out; ++r) quantize_row(t, wf.data() + r * n_in, w.data() + r * row_bytes(t, n_in), n_in);
    } else {  // Q4_K: random bytes with small scales
      std::mt19937 rng(1);
      for (auto& b : w) b = uint8_t(rng());
      for (int64_t b = 0; b < int64_t(w.size()) / 144; ++b) {
        const uint16_t s = f32_to_f16(0.01f);
        std::memcpy(w.data() + b * 144, &s, 2);
        std::memcpy(w.data() + b * 144 + 2, &s, 2);
      }
    }
    WeightMatrix m{t, w.data(), n_in, n_out};
    auto x = random_floats(size_t(n_in * n_tok), 11);
    std::vector<float> y(static_cast<size_t>(n_out * n_tok));
    matmul(m, x.data(), n_tok, y.data(), pool);
    std::vector<float> row(static_cast<size_t>(n_in));
    for (int64_t r = 0; r < n_out; ++r) {
      dequantize_row(t, m.row(r), row.data(), n_in);
      for (int64_t tk = 0; tk < n_tok; ++tk) {
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < n_in; ++i) {
          ref += double(row[size_t(i)]) * x[size_t(tk * n_in + i)];
          mag += std::fabs(double(row[size_t(i)]) * x[size_t(tk * n_in + i)]);
        }
        EXPECT_NEAR(y[size_t(tk * n_out + r)], ref, mag * 0.02 + 1e-4) << dtype_name(t);
      }
    }
  }
}

}  // namespace
}  // namespace chassis

namespace chassis {
namespace {

// Valid random rows of type t: random bytes with small finite fp16 scales in each block (floats
// for F32/F16/BF16).
std::vector<uint8_t> random_rows(DType t, int64_t n_in, int64_t n_out, std::mt19937& rng) {
  const DTypeInfo& info = dtype_info(t);
  std::vector<uint8_t> w(size_t(row_bytes(t, n_in) * n_out));
  if (info.block_size == 1) {
    const auto f = test::random_floats(size_t(n_in * n_out), uint32_t(rng()));
    if (t == DType::F32) std::memcpy(w.data(), f.data(), w.size());
    else quantize_row(t, f.data(), w.data(), n_in * n_out);
    return w;
  }
  for (auto& b : w) b = uint8_t(rng());
  for (int64_t b = 0; b < int64_t(w.size()) / info.block_bytes; ++b) {
    uint8_t* blk = w.data() + b * info.block_bytes;
    const uint16_t s = f32_to_f16(0.01f + 0.001f * float(rng() % 97));
    switch (t) {  // where each block keeps its fp16 scale (and min)
      case DType::Q4_K: case DType::Q5_K: case DType::Q4_1: case DType::Q5_1:
        std::memcpy(blk, &s, 2); std::memcpy(blk + 2, &s, 2); break;
      case DType::Q2_K: std::memcpy(blk + 80, &s, 2); std::memcpy(blk + 82, &s, 2); break;
      case DType::Q3_K: std::memcpy(blk + 108, &s, 2); break;
      case DType::Q6_K: std::memcpy(blk + 208, &s, 2); break;
      default: std::memcpy(blk, &s, 2); break;
    }
  }
  return w;
}

// The AVX2 kernels must equal the scalar reference bit for bit (same float operations, same order),
// on random data with odd block counts, at every batch position the kernels distinguish.
TEST(Kernels, Avx2DotProductsAreBitIdenticalToTheReference) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(77);
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                  DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    const DTypeInfo& info = dtype_info(t);
    for (int64_t blocks : {1, 3, 7, 16, 16, 16, 16, 16}) {  // repeated sizes: fresh random data each time
      const int64_t n = info.block_size == 1 ? 8 * blocks * 5 + (blocks == 3 ? 4 : 0) : info.block_size * blocks;
      const std::vector<uint8_t> w = random_rows(t, n, 1, rng);
      auto x = test::random_floats(size_t(n), uint32_t(rng()));
      std::vector<uint8_t> a(size_t(row_bytes(info.vec_dot_type, n)));
      quantize_row(info.vec_dot_type, x.data(), a.data(), n);
      for (auto [rows, row] : {std::pair<int64_t, int64_t>{1, 0}, {2, 1}, {5, 0}, {5, 4}}) {
        float fast = 0;
        ASSERT_TRUE(vec_dot_avx2(t, w.data(), a.data(), n, rows, row, &fast));
        const float ref = vec_dot(t, w.data(), a.data(), n, rows, row);
        EXPECT_EQ(f32_to_bits(fast), f32_to_bits(ref)) << dtype_name(t) << " n=" << n << " rows=" << rows << " row=" << row;
      }
    }
  }
}

}  // namespace
}  // namespace chassis

namespace chassis {
namespace {

TEST(Kernels, Avx2AttentionIsBitIdenticalToTheReference) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(5);
  // The key-by-key kernel has a 512-bit body where the CPU has AVX-512: both are checked.
  for (bool avx512 : {false, true}) {
  if (avx512 && !cpu_has_avx512bw()) continue;
  set_avx512_tiles_enabled(avx512);
  for (bool tiled : {false, true}) {
    for (int d : {32, 40, 64, 96, 128, 256}) {
      if (!tiled && d % 32 != 0) continue;  // the key-by-key kernel takes multiples of 32
      const int64_t kv_heads = 2, stride = d * kv_heads, n_kv = 150;
      auto kf = test::random_floats(size_t(n_kv * stride), uint32_t(d), 2.0f);
      auto vf = test::random_floats(size_t(n_kv * stride), uint32_t(d) + 1);
      std::vector<uint16_t> k(kf.size()), v(vf.size());
      for (size_t i = 0; i < kf.size(); ++i) { k[i] = f32_to_f16(kf[i]); v[i] = f32_to_f16(vf[i]); }
      for (float cap : {0.0f, 20.0f}) {
        for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 1}, {0, 37}, {5, 70}, {0, 64}, {3, 150}, {70, 129}}) {
          auto q = test::random_floats(size_t(d), uint32_t(rng()));
          AttentionParams p{d, 1.0f / std::sqrt(float(d)), cap};
          p.tiled = tiled;
          std::vector<float> ref(static_cast<size_t>(d)), fast(static_cast<size_t>(d)), scratch(static_cast<size_t>(n_kv));
          const int32_t one_block = 0;
          const KvRows kr{k.data() + d, &one_block, n_kv, 0, stride}, vr{v.data() + d, &one_block, n_kv, 0, stride};
          attend_one(q.data(), kr, vr, begin, end, ref.data(), scratch.data(), p);
          ASSERT_TRUE(attend_one_avx2(q.data(), kr, vr, begin, end, fast.data(), p));
          for (int i = 0; i < d; ++i)
            ASSERT_EQ(f32_to_bits(fast[size_t(i)]), f32_to_bits(ref[size_t(i)]))
                << "avx512=" << avx512 << " tiled=" << tiled << " d=" << d << " cap=" << cap << " range=" << begin
                << ".." << end << " i=" << i;
        }
      }
    }
  }
  }
  set_avx512_tiles_enabled(true);
}

}  // namespace
}  // namespace chassis

namespace chassis {
namespace {

// A paged cache (rows in blocks of 7 positions, blocks scattered in a pool in shuffled order) must
// give bit-identical attention to the same rows stored contiguously: every kernel, tiled or not.
TEST(Kernels, PagedKvRowsGiveTheSameAttentionAsContiguous) {
  const int d = 64;
  const int64_t kv_heads = 2, row = d * kv_heads, n_kv = 100, block = 7;
  const int64_t n_blocks = (n_kv + block - 1) / block;
  auto kf = test::random_floats(size_t(n_kv * row), 11, 2.0f), vf = test::random_floats(size_t(n_kv * row), 12);
  std::vector<uint16_t> k(kf.size()), v(vf.size());
  for (size_t i = 0; i < kf.size(); ++i) { k[i] = f32_to_f16(kf[i]); v[i] = f32_to_f16(vf[i]); }
  // Pool with two spare blocks; the sequence's blocks in a shuffled order.
  std::vector<int32_t> table(static_cast<size_t>(n_blocks));
  for (int64_t b = 0; b < n_blocks; ++b) table[size_t(b)] = int32_t((b * 5 + 3) % (n_blocks + 2));
  std::vector<uint16_t> pk(size_t((n_blocks + 2) * block * row), 0x7c00), pv(pk.size(), 0x7c00);  // +inf elsewhere
  for (int64_t j = 0; j < n_kv; ++j)
    for (int64_t i = 0; i < row; ++i) {
      const size_t dst = size_t((table[size_t(j / block)] * block + j % block) * row + i);
      pk[dst] = k[size_t(j * row + i)];
      pv[dst] = v[size_t(j * row + i)];
    }
  const int32_t one_block = 0;
  const KvRows ck{k.data() + d, &one_block, n_kv, 0, row}, cv{v.data() + d, &one_block, n_kv, 0, row};
  const KvRows paged_k{pk.data() + d, table.data(), block, block * row, row}, paged_v{pv.data() + d, table.data(), block, block * row, row};
  auto q = test::random_floats(size_t(d), 13);
  for (bool tiled : {false, true})
    for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 1}, {0, 7}, {3, 8}, {6, 100}, {0, 100}, {14, 15}}) {
      AttentionParams p{d, 0.125f, 0.0f, tiled};
      std::vector<float> a(static_cast<size_t>(d)), b(static_cast<size_t>(d)), scratch(static_cast<size_t>(n_kv));
      attend_one(q.data(), ck, cv, begin, end, a.data(), scratch.data(), p);
      attend_one(q.data(), paged_k, paged_v, begin, end, b.data(), scratch.data(), p);
      for (int i = 0; i < d; ++i) ASSERT_EQ(f32_to_bits(a[size_t(i)]), f32_to_bits(b[size_t(i)])) << tiled << " " << begin;
      if (!tiled && cpu_has_avx2()) {
        ASSERT_TRUE(attend_one_avx2(q.data(), paged_k, paged_v, begin, end, b.data(), p));
        for (int i = 0; i < d; ++i) ASSERT_EQ(f32_to_bits(a[size_t(i)]), f32_to_bits(b[size_t(i)])) << begin;
      }
    }
}

}  // namespace
}  // namespace chassis

namespace chassis {
namespace {

// An F32 cache (--kv-type f32): attention over float rows equals softmax attention in double.
TEST(Kernels, F32KvAttentionMatchesNaiveSoftmaxAttention) {
  const int d = 48;
  const int64_t n_kv = 29, kv_heads = 3, row = d * kv_heads;
  auto k = random_floats(size_t(n_kv * row), 21, 1.5f), v = random_floats(size_t(n_kv * row), 22);
  auto q = random_floats(size_t(d), 23);
  const int32_t one_block = 0;
  // Strides count halfs: two per float.
  const KvRows kr{reinterpret_cast<const uint16_t*>(k.data() + d), &one_block, n_kv, 0, 2 * row, true};
  const KvRows vr{reinterpret_cast<const uint16_t*>(v.data() + d), &one_block, n_kv, 0, 2 * row, true};
  for (float cap : {0.0f, 4.0f})
    for (int64_t begin : {0, 9}) {
      AttentionParams p{d, 0.2f, cap};
      std::vector<float> out(static_cast<size_t>(d)), scratch(static_cast<size_t>(n_kv));
      attend_one(q.data(), kr, vr, begin, n_kv, out.data(), scratch.data(), p);
      std::vector<double> s;
      double mx = -INFINITY;
      for (int64_t j = begin; j < n_kv; ++j) {
        double dot = 0;
        for (int i = 0; i < d; ++i) dot += double(q[size_t(i)]) * k[size_t(j * row + d + i)];
        dot *= 0.2;
        if (cap > 0) dot = cap * std::tanh(dot / cap);
        s.push_back(dot);
        mx = std::max(mx, dot);
      }
      double sum = 0;
      for (double& x : s) sum += x = std::exp(x - mx);
      for (int i = 0; i < d; ++i) {
        double want = 0;
        for (int64_t j = begin; j < n_kv; ++j) want += s[size_t(j - begin)] / sum * v[size_t(j * row + d + i)];
        EXPECT_NEAR(out[size_t(i)], want, 1e-5) << "cap=" << cap << " begin=" << begin << " i=" << i;
      }
    }
}

}  // namespace
}  // namespace chassis

namespace chassis {
namespace {

// The tile sets to test: AVX2 only, AVX2 with AVX-VNNI, with AVX-512BW where the CPU has it, with
// AVX512-VNNI too (GFNI off), and with GFNI as well.
enum class TileSet { kAvx2, kAvx2Vnni, kAvx512, kVnni, kVnniGfni };
std::vector<TileSet> tile_sets() {
  std::vector<TileSet> sets{TileSet::kAvx2};
  if (cpu_has_avx_vnni()) sets.push_back(TileSet::kAvx2Vnni);
  if (cpu_has_avx512bw()) sets.push_back(TileSet::kAvx512);
  if (cpu_has_avx512vnni()) sets.push_back(TileSet::kVnni);
  if (cpu_has_avx512vnni() && cpu_has_gfni()) sets.push_back(TileSet::kVnniGfni);
  return sets;
}
void use_tile_set(TileSet set) {
  set_avx512_tiles_enabled(set == TileSet::kAvx512 || set == TileSet::kVnni || set == TileSet::kVnniGfni);
  set_vnni_tiles_enabled(set == TileSet::kAvx2Vnni || set == TileSet::kVnni || set == TileSet::kVnniGfni);
  set_gfni_tiles_enabled(set == TileSet::kVnniGfni);
}
void restore_tile_sets() {
  set_avx512_tiles_enabled(true);
  set_vnni_tiles_enabled(true);
  set_gfni_tiles_enabled(true);
}
// A test that switches tile sets off and fails an ASSERT midway returns before switching them back;
// run in one process (ctest runs each test alone), every later test would then run without them,
// and fail or pass for that reason. So after every test of the process the switches are back on.
class RestoreTileSetsAfterEachTest : public ::testing::EmptyTestEventListener {
  void OnTestEnd(const ::testing::TestInfo&) override { restore_tile_sets(); }
};
[[maybe_unused]] const bool g_restore_tile_sets_registered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new RestoreTileSetsAfterEachTest);
  return true;
}();
const char* tile_set_name(TileSet set) {
  switch (set) {
    case TileSet::kAvx2: return "avx2";
    case TileSet::kAvx2Vnni: return "avx2-vnni";
    case TileSet::kAvx512: return "avx512";
    case TileSet::kVnni: return "avx512-vnni";
    case TileSet::kVnniGfni: return "avx512-vnni-gfni";
  }
  return "?";
}

// y as matmul_rows writes rows [begin, n_out) x n_tok of it, against the reference dot product of
// each original row (file layout) with the token's encoded activations, bit for bit, under the
// batch variant the reference picks for that token (or a batch of one when row-invariant).
::testing::AssertionResult matches_reference_dots(DType t, const uint8_t* rows, int64_t n_in, int64_t begin, int64_t n_out,
                                                  const float* x, int64_t n_tok, const std::vector<float>& y, bool invariant) {
  const DType at = dtype_info(t).vec_dot_type;
  std::vector<uint8_t> a(size_t(row_bytes(at, n_in)));
  for (int64_t tk = 0; tk < n_tok; ++tk) {
    quantize_row(at, x + tk * n_in, a.data(), n_in);
    for (int64_t r = begin; r < n_out; ++r) {
      const float ref = vec_dot(t, rows + r * row_bytes(t, n_in), a.data(), n_in, invariant ? 1 : n_tok, invariant ? 0 : tk);
      const float got = y[size_t(tk * (n_out - begin) + r - begin)];
      if (f32_to_bits(got) != f32_to_bits(ref))
        return ::testing::AssertionFailure() << "row " << r << " token " << tk << ": " << got << " != reference " << ref;
    }
  }
  return ::testing::AssertionSuccess();
}

// The AVX2 tiles (several rows x several tokens per step, edge tiles of every size) give every
// element bit for bit what its single dot product gives, for every batch variant the reference
// distinguishes (batched or row-invariant; batch sizes with and without a tail).
TEST(Kernels, Avx2MatmulTilesAreBitIdenticalToTheReferenceDots) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(91);
  ThreadPool pool(2);
  // Every tile set the CPU has (AVX2, 512-bit AVX-512BW, and AVX512-VNNI integer sums).
  for (TileSet set : tile_sets()) {
  use_tile_set(set);
  for (DType t : {DType::F16, DType::BF16, DType::Q8_0, DType::Q5_0, DType::Q4_0, DType::Q4_K, DType::Q6_K, DType::Q3_K,
                  DType::Q2_K}) {
    // Q2_K and Q3_K have 512-bit tiles only.
    const bool tiles_512_only = t == DType::Q2_K || t == DType::Q3_K;
    ASSERT_EQ(has_tiled_avx2(t), !tiles_512_only || use_avx512_tiles()) << dtype_name(t);
    const DTypeInfo& info = dtype_info(t);
    for (int64_t n_in : {info.block_size == 1 ? int64_t(72) : info.block_size * 3,
                         info.block_size == 1 ? int64_t(100) : info.block_size * 7}) {
      for (int64_t n_out : {int64_t(1), int64_t(5), int64_t(13)}) {
        const auto w = random_rows(t, n_in, n_out, rng);
        const WeightMatrix m{t, w.data(), n_in, n_out};
        for (int64_t n_tok : {1, 2, 3, 5, 8, 11}) {
          for (bool invariant : {false, true}) {
            auto x = test::random_floats(size_t(n_in * n_tok), uint32_t(rng()));
            std::vector<float> y(size_t(n_out * n_tok));
            matmul(m, x.data(), n_tok, y.data(), pool, invariant);
            ASSERT_TRUE(matches_reference_dots(t, w.data(), n_in, 0, n_out, x.data(), n_tok, y, invariant))
                << dtype_name(t) << " n_in=" << n_in << " n_out=" << n_out << " n_tok=" << n_tok
                << " invariant=" << invariant << " tiles=" << tile_set_name(set);
          }
        }
      }
    }
  }
  }
  restore_tile_sets();
}

// Batched F16 and BF16 on shapes large enough for the 512-bit kernel's blocking to split the rows
// (40 at a time, tiles of 10) and the inner dimension (512 elements at a time, accumulators parked in
// between), with ragged ends of both and token tails of 1, 4 and 2, still equal every element's
// reference dot product bit for bit.
TEST(Kernels, BatchedF16IsBitIdenticalAcrossRowAndInnerBlocks) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(95);
  ThreadPool pool(2);
  for (TileSet set : tile_sets()) {
    use_tile_set(set);
    for (DType t : {DType::F16, DType::BF16})
    for (auto [n_in, n_out, n_tok] : {std::array<int64_t, 3>{1200, 101, 21}, {1024, 48, 9}, {520, 7, 17}}) {
      const auto w = random_rows(t, n_in, n_out, rng);
      const WeightMatrix m{t, w.data(), n_in, n_out};
      auto x = test::random_floats(size_t(n_in * n_tok), uint32_t(rng()));
      std::vector<float> y(size_t(n_out * n_tok));
      matmul(m, x.data(), n_tok, y.data(), pool, /*row_invariant=*/false);
      ASSERT_TRUE(matches_reference_dots(t, w.data(), n_in, 0, n_out, x.data(), n_tok, y, false))
          << dtype_name(t) << " n_in=" << n_in << " n_out=" << n_out << " n_tok=" << n_tok
          << " tiles=" << tile_set_name(set);
    }
  }
  restore_tile_sets();
}

// Rows interleaved eight at a time give back every original row, and every matmul over them (the
// interleaved tiles, the one-dot path with tiles off, a row range that splits a group) equals the
// reference dot product of the original row bit for bit.
TEST(Kernels, InterleavedMatmulIsBitIdenticalToTheReferenceDots) {
  std::mt19937 rng(93);
  ThreadPool pool(2);
  // Every tile set the CPU has (pairs of groups in 512-bit registers; VNNI integer sums).
  for (TileSet set : tile_sets()) {
  use_tile_set(set);
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q4_K,
                  DType::Q5_K}) {
    ASSERT_TRUE(can_interleave(t));
    const int64_t bs = dtype_info(t).block_size;
    // Rows wide enough for the chunked one-token paths: Q8_0 100 blocks (kQ8ChunkedMinBlocks), Q4_0
    // 200 (kQ4_0ChunkedMinBlocks).
    std::vector<int64_t> widths = {bs * 3, bs * 7, bs * 28};
    if (t == DType::Q8_0) widths.push_back(bs * 100);
    if (t == DType::Q4_0) widths.push_back(bs * 200);
    for (int64_t n_in : widths) {
      for (int64_t n_out : {int64_t(8), int64_t(16), int64_t(24), int64_t(56)}) {
        const auto w = random_rows(t, n_in, n_out, rng);
        std::vector<uint8_t> packed(size_t(interleaved_group_bytes(t, n_in) * (n_out / kInterleavedRows)));
        interleave_rows(t, w.data(), n_in, 0, n_out / kInterleavedRows, packed.data());
        WeightMatrix m{t, packed.data(), n_in, n_out};
        m.interleaved = true;
        std::vector<uint8_t> row(size_t(m.row_stride()));
        for (int64_t r = 0; r < n_out; ++r)
          ASSERT_EQ(0, std::memcmp(m.read_row(r, row.data()), w.data() + r * m.row_stride(), row.size()))
              << dtype_name(t) << " row " << r;
        for (int64_t n_tok : {1, 2, 3, 4, 5, 7}) {  // 5: a one-token tail of the 512-bit tiles
          auto x = test::random_floats(size_t(n_in * n_tok), uint32_t(rng()));
          // All rows; with tiles off; rows 8.. (whole groups); rows 4.. (splitting a group); all rows
          // row-invariant (each token summed as a batch of one).
          for (int mode = 0; mode < 5; ++mode) {
            const int64_t begin = mode == 2 ? std::min<int64_t>(8, n_out - 8) : mode == 3 ? 4 : 0;
            const bool invariant = mode == 4;
            std::vector<float> y(size_t((n_out - begin) * n_tok));
            set_matmul_tiles_enabled(mode != 1);
            matmul_rows(m, begin, n_out, x.data(), n_tok, y.data(), pool, invariant);
            set_matmul_tiles_enabled(true);
            ASSERT_TRUE(matches_reference_dots(t, w.data(), n_in, begin, n_out, x.data(), n_tok, y, invariant))
                << dtype_name(t) << " n_in=" << n_in << " n_out=" << n_out << " n_tok=" << n_tok << " mode=" << mode
                << " tiles=" << tile_set_name(set);
          }
        }
      }
    }
  }
  }
  restore_tile_sets();
}

// A group of products of one input (matmul_group: one region, the input encoded once per encoding,
// rows handed out across products from one counter) gives every element of every product its
// reference dot product bit for bit: weights of types with different activation encodings,
// interleaved and not, a row range splitting a group, a type without tiles (F32), small and large
// products.
TEST(Kernels, MatmulGroupGivesEveryProductItsReferenceDots) {
  std::mt19937 rng(97);
  ThreadPool pool(2);
  const int64_t n_in = 512;
  struct Spec {
    DType t;
    int64_t n_out, begin;
    bool interleave;
  };
  const Spec specs[] = {{DType::Q5_0, 136, 0, true}, {DType::Q8_0, 24, 0, true},   {DType::Q4_K, 40, 0, true},
                        {DType::F16, 13, 0, false},  {DType::Q4_0, 24, 4, true},   {DType::F32, 5, 0, false},
                        {DType::Q6_K, 7, 0, false},  {DType::Q8_0, 200, 0, false}};
  std::vector<std::vector<uint8_t>> rows, stored;  // file layout (the oracle's), and as the product reads it
  std::vector<WeightMatrix> mats;
  for (const Spec& sp : specs) {
    rows.push_back(random_rows(sp.t, n_in, sp.n_out, rng));
    WeightMatrix m{sp.t, nullptr, n_in, sp.n_out};
    std::vector<uint8_t> w = rows.back();
    if (sp.interleave) {
      w.assign(size_t(interleaved_group_bytes(sp.t, n_in) * (sp.n_out / kInterleavedRows)), 0);
      interleave_rows(sp.t, rows.back().data(), n_in, 0, sp.n_out / kInterleavedRows, w.data());
      m.interleaved = true;
    }
    stored.push_back(std::move(w));
    m.data = stored.back().data();
    mats.push_back(m);
  }
  for (TileSet set : tile_sets()) {
    use_tile_set(set);
    for (int64_t n_tok : {1, 3, 9}) {
      for (bool invariant : {false, true}) {
        auto x = test::random_floats(size_t(n_in * n_tok), uint32_t(rng()));
        std::vector<std::vector<float>> y;
        std::vector<MatmulTarget> targets;
        for (const Spec& sp : specs) y.emplace_back(size_t((sp.n_out - sp.begin) * n_tok), -1.0f);
        for (size_t i = 0; i < mats.size(); ++i) targets.push_back({&mats[i], specs[i].begin, specs[i].n_out, y[i].data()});
        matmul_group(targets, x.data(), n_tok, pool, invariant);
        for (size_t i = 0; i < mats.size(); ++i)
          ASSERT_TRUE(matches_reference_dots(specs[i].t, rows[i].data(), n_in, specs[i].begin, specs[i].n_out, x.data(),
                                             n_tok, y[i], invariant))
              << "product " << i << " (" << dtype_name(specs[i].t) << ") n_tok=" << n_tok << " invariant=" << invariant
              << " tiles=" << tile_set_name(set);
      }
    }
  }
  restore_tile_sets();
}

}  // namespace
}  // namespace chassis

namespace chassis {
namespace {

// The FMA builds of the element-wise kernels and the AVX2 activation quantizers match the scalar
// reference bit for bit (odd sizes, NeoX and normal rope, a Llama-3 frequency table, YaRN, ties and
// all-zero blocks for the quantizers).
TEST(Kernels, Avx2ElementwiseAndQuantizersAreBitIdenticalToTheReference) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(17);
  for (int64_t n : {1, 7, 8, 9, 4863, 4864}) {
    auto g = test::random_floats(size_t(n), uint32_t(rng()), 4.0f), u = test::random_floats(size_t(n), uint32_t(rng()));
    // Gates whose exp(-g) leaves a float's exponent range (the polynomial's two-step scaling, and
    // past it), spread over the vector groups and the tail.
    const float far[] = {88.0f, -88.0f, 100.0f, -100.0f, 130.0f, -130.0f, 150.0f, -150.0f, 1.0e6f, -1.0e6f,
                         std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
    for (size_t k = 0; k < std::size(far) && n > 8; ++k) g[(k * 397) % size_t(n)] = far[k];
    std::vector<float> ref(static_cast<size_t>(n)), fast(static_cast<size_t>(n));
    swiglu(g.data(), u.data(), ref.data(), n);
    swiglu_avx2(g.data(), u.data(), fast.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(f32_to_bits(fast[size_t(i)]), f32_to_bits(ref[size_t(i)])) << "swiglu n=" << n << " i=" << i;
    // Rounding to f16 and back (F16 weights' activations), with f16's edge values mixed in:
    // subnormals, halfway ties, the largest finite value and past it, infinities.
    const float edges[] = {6.0e-8f, 3.0e-8f, 1.0e-5f, 65504.0f, 65519.0f, 65520.0f, 1.0e6f, -1.0e6f,
                           1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, -0.0f, std::numeric_limits<float>::infinity()};
    for (size_t i = 0; i < g.size(); i += 5) g[i] = edges[(i / 5) % std::size(edges)];
    for (int64_t i = 0; i < n; ++i) ref[size_t(i)] = round_f16(g[size_t(i)]);
    round_f16_avx2(g.data(), fast.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(f32_to_bits(fast[size_t(i)]), f32_to_bits(ref[size_t(i)])) << "round_f16 n=" << n << " i=" << i;
    // To f16 for the KV cache, NaNs with payloads too (the reference writes one quiet NaN per sign).
    if (n > 8) {
      g[3] = bits_to_f32(0x7fa00001u);  // a signalling NaN with a payload
      g[size_t(n) - 2] = bits_to_f32(0xffc12345u);
    }
    std::vector<uint16_t> h_ref(static_cast<size_t>(n)), h_fast(static_cast<size_t>(n));
    f32_to_f16_row(g.data(), h_ref.data(), n);
    f32_to_f16_row_avx2(g.data(), h_fast.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(h_fast[size_t(i)], h_ref[size_t(i)]) << "f32_to_f16_row n=" << n << " i=" << i;
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(h_ref[size_t(i)], f32_to_f16(g[size_t(i)])) << "f32_to_f16_row n=" << n << " i=" << i;
  }
  std::vector<float> factors(32);
  for (size_t i = 0; i < factors.size(); ++i) factors[i] = 1.0f + float(i % 5);
  for (RopeStyle style : {RopeStyle::Normal, RopeStyle::NeoX}) {
    for (int pos : {0, 1, 17, 4095, 70000}) {
      RopeParams p;
      p.n_rot = pos == 1 ? 40 : 64;  // partial rotary: the last 24 of each head stay
      p.style = style;
      p.freq_base = 500000.0f;
      p.freq_factors = pos == 17 ? factors.data() : nullptr;
      if (pos == 4095) {  // YaRN
        p.freq_scale = 0.125f;
        p.ext_factor = 1.0f;
        p.corr_dims[0] = 3;
        p.corr_dims[1] = 21;
      }
      // The one-step reference against its two steps (angles once, then rotations by them) in the
      // scalar and the FMA builds, over two tensors of 3 and 1 heads at the same position.
      auto x = test::random_floats(3 * 64, uint32_t(rng())), k = test::random_floats(64, uint32_t(rng()));
      auto y = x, y2 = x, k_fast = k, k2 = k;
      rope(x.data(), 3, 64, pos, p);
      rope(k.data(), 1, 64, pos, p);
      std::vector<float> cs(size_t(p.n_rot / 2)), sn(cs.size());
      rope_angles(pos, p, cs.data(), sn.data());
      rope_rotate_avx2(y.data(), 3, 64, p, cs.data(), sn.data());
      rope_rotate_avx2(k_fast.data(), 1, 64, p, cs.data(), sn.data());
      rope_rotate(y2.data(), 3, 64, p, cs.data(), sn.data());
      rope_rotate(k2.data(), 1, 64, p, cs.data(), sn.data());
      for (size_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(f32_to_bits(y[i]), f32_to_bits(x[i])) << "rope pos=" << pos << " i=" << i;
        ASSERT_EQ(f32_to_bits(y2[i]), f32_to_bits(x[i])) << "rope pos=" << pos << " i=" << i;
      }
      for (size_t i = 0; i < k.size(); ++i) {
        ASSERT_EQ(f32_to_bits(k_fast[i]), f32_to_bits(k[i])) << "rope k pos=" << pos << " i=" << i;
        ASSERT_EQ(f32_to_bits(k2[i]), f32_to_bits(k[i])) << "rope k pos=" << pos << " i=" << i;
      }
    }
  }
  for (DType t : {DType::Q8_0, DType::Q8_K}) {
    const int64_t bs = dtype_info(t).block_size;
    for (int64_t blocks : {1, 3, 7}) {
      const int64_t n = bs * blocks;
      auto x = test::random_floats(size_t(n), uint32_t(rng()), 3.0f);
      std::fill(x.begin(), x.begin() + bs, 0.0f);  // an all-zero block
      if (blocks > 1) {                            // a tie of magnitudes with opposite signs
        x[size_t(bs + 3)] = -5.5f;
        x[size_t(bs + 9)] = 5.5f;
      }
      std::vector<uint8_t> ref(size_t(row_bytes(t, n))), fast(ref.size());
      quantize_row(t, x.data(), ref.data(), n);
      ASSERT_TRUE(quantize_row_avx2(t, x.data(), fast.data(), n));
      ASSERT_EQ(0, std::memcmp(ref.data(), fast.data(), ref.size())) << dtype_name(t) << " blocks=" << blocks;
    }
  }
}

// The buffer that load-time weights live in: zero-filled like a vector, writable to its last byte,
// and (from one huge page up) starting on a 2 MiB boundary, the only place a huge page can back.
TEST(PageBuffer, IsZeroedWritableAndAlignedForHugePages) {
  for (size_t bytes : {size_t(0), size_t(1), size_t(4095), size_t(5) << 20}) {
    PageBuffer b(bytes);
    ASSERT_EQ(b.size(), bytes);
    if (bytes == 0) continue;
    ASSERT_NE(b.data(), nullptr);
    if (bytes >= (size_t(2) << 20)) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % (uintptr_t(2) << 20), 0u);
    }
    EXPECT_EQ(std::count(b.data(), b.data() + bytes, uint8_t(0)), int64_t(bytes));
    b.data()[bytes - 1] = 2;
    b.data()[0] = 1;
    EXPECT_EQ(b.data()[bytes - 1], bytes == 1 ? 1 : 2);
  }
}

}  // namespace
}  // namespace chassis
