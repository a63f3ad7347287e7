// The AVX-512 decode attention kernel for several query heads of one kv head, against the scalar
// reference.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "kernels/cpu/attention_avx2.h"
#include "kernels/cpu/dot_avx2.h"
#include "kernels/cpu/expf_libm.h"
#include "kernels/cpu/matmul_avx2.h"
#include "kernels/ops.h"
#include "test_util.h"

namespace chassis {
namespace {

// A paged f16 cache of n_kv random positions, two kv heads of size d (the second one's rows are the
// ones read), its blocks of `block` positions placed in the pool by `place(b, n_blocks)`.
struct PagedKv {
  std::vector<uint16_t> k, v;
  std::vector<int32_t> table;
  KvRows kr{}, vr{};
  template <typename Place>
  PagedKv(int d, int64_t n_kv, int64_t block, uint32_t seed, Place place) {
    const int64_t stride = 2 * d, n_blocks = (n_kv + block - 1) / block;
    auto kf = test::random_floats(size_t(n_kv * stride), seed, 2.0f);
    auto vf = test::random_floats(size_t(n_kv * stride), seed + 1);
    k.resize(size_t(n_blocks * block * stride));
    v.resize(k.size());
    table.resize(size_t(n_blocks));
    for (int64_t b = 0; b < n_blocks; ++b) table[size_t(b)] = int32_t(place(b, n_blocks));
    for (int64_t pos = 0; pos < n_kv; ++pos)
      for (int64_t i = 0; i < stride; ++i) {
        const size_t at = size_t((table[size_t(pos / block)] * block + pos % block) * stride + i);
        k[at] = f32_to_f16(kf[size_t(pos * stride + i)]);
        v[at] = f32_to_f16(vf[size_t(pos * stride + i)]);
      }
    kr = KvRows{k.data() + d, table.data(), block, block * stride, stride};
    vr = KvRows{v.data() + d, table.data(), block, block * stride, stride};
  }
};

// Several query heads of one kv head in one pass: each head's output bit-identical to the reference,
// for every head count the kernel takes, head sizes 32/64/128, windows, softcap and a paged cache;
// with queries scaled up too, so that scores a hundred and more apart send some of a block's exps to
// the scalar expf (past the vector one's range: results so small that no output shows them).
TEST(Kernels, GroupedHeadsAttentionIsBitIdenticalToTheReference) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(11);
  // Both bodies: the 256-bit one (AVX-512 switched off) and the 512-bit one where the CPU has it.
  for (bool avx512 : {false, true}) {
  if (avx512 && !cpu_has_avx512bw()) continue;
  set_avx512_tiles_enabled(avx512);
  for (int d : {32, 64, 128}) {
    const int64_t n_kv = 150;
    // Blocks of 16 positions in reverse order in the pool, as a paged cache may hold them.
    const PagedKv cache(d, n_kv, 16, uint32_t(d) + 7, [](int64_t b, int64_t n) { return n - 1 - b; });
    const KvRows &kr = cache.kr, &vr = cache.vr;
    for (float cap : {0.0f, 20.0f}) {
      AttentionParams p{d, 1.0f / std::sqrt(float(d)), cap};
      const int max_heads = attend_heads_max(kr, p);
      ASSERT_GE(max_heads, 2) << "d=" << d;
      for (int n_q = 1; n_q <= max_heads; ++n_q) {
        const int64_t q_stride = d + 16;  // heads need not be adjacent
        auto q = test::random_floats(size_t(n_q * q_stride), uint32_t(rng()));
        if (n_q % 2 == 0) for (float& x : q) x *= 40.0f;
        for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 1}, {0, 37}, {5, 70}, {3, 150}, {70, 129}}) {
          std::vector<float> fast(size_t(n_q * q_stride), -1.0f), ref(static_cast<size_t>(d)), scratch(static_cast<size_t>(n_kv));
          ASSERT_TRUE(attend_heads_avx2(n_q, q.data(), q_stride, kr, vr, begin, end, fast.data(), q_stride, p));
          for (int h = 0; h < n_q; ++h) {
            attend_one(q.data() + h * q_stride, kr, vr, begin, end, ref.data(), scratch.data(), p);
            for (int i = 0; i < d; ++i)
              ASSERT_EQ(f32_to_bits(fast[size_t(h * q_stride + i)]), f32_to_bits(ref[size_t(i)]))
                  << "avx512=" << avx512 << " d=" << d << " cap=" << cap << " heads=" << n_q << " head=" << h << " range=" << begin << ".."
                  << end << " i=" << i;
          }
        }
      }
      EXPECT_FALSE(attend_heads_avx2(max_heads + 1, nullptr, 0, kr, vr, 0, 1, nullptr, 0, p));
    }
  }
  }
  set_avx512_tiles_enabled(true);
  AttentionParams odd{96, 0.1f};
  const int32_t zero = 0;
  EXPECT_EQ(attend_heads_max(KvRows{nullptr, &zero, 1, 0, 96}, odd), 0);  // no kernel for head size 96
}

// Prefill's batch kernel: many queries of one kv head, each with its own key range (causal ends one
// apart, windows, an empty range, ranges that skip whole tiles), each output bit-identical to the
// reference's tiled kernel; head sizes that fill 1..4 column vectors, softcap, a paged cache, and
// queries scaled up so that scores far apart send exps through the polynomial's two-step scaling.
// Both bodies: attend_tiled_batch (AVX-512 where the CPU has it) and the AVX2 one.
TEST(Kernels, TiledBatchAttentionIsBitIdenticalToTheReference) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "the tiled batch kernel needs AVX2";
  for (auto* kernel : {attend_tiled_batch, attend_tiled_batch_avx2}) {
    const bool avx2_body = kernel == attend_tiled_batch_avx2;
    std::mt19937 rng(12);
    for (int d : {16, 48, 64, 96, 128, 256}) {
      const int64_t n_kv = 301;
      const PagedKv cache(d, n_kv, 32, uint32_t(d) + 17, [](int64_t b, int64_t n) { return (b * 5 + 3) % n; });  // scattered
      const KvRows &kr = cache.kr, &vr = cache.vr;
      for (float cap : {0.0f, 20.0f})
        for (float q_scale : {1.0f, 40.0f}) {
          AttentionParams p{d, 1.0f / std::sqrt(float(d)), cap, /*tiled=*/true};
          ASSERT_TRUE(attend_tiled_batch_supported(kr, p)) << "d=" << d;
          // Ranges: causal ends one apart (a tile's edge among them), windows, an empty one, single keys.
          std::vector<std::pair<int64_t, int64_t>> ranges;
          for (int64_t end = 58; end <= 71; ++end) ranges.push_back({0, end});
          for (int64_t end = 290; end <= 301; end += 3) ranges.push_back({0, end});
          ranges.insert(ranges.end(), {{130, 200}, {100, 101}, {5, 5}, {0, 1}, {64, 128}, {250, 301}, {63, 65}});
          const int n_q = int(ranges.size());
          auto q = test::random_floats(size_t(n_q * d), uint32_t(rng()));
          for (float& x : q) x *= q_scale;
          std::vector<float> fast(size_t(n_q * d), -1.0f), ref(static_cast<size_t>(d)), scratch(static_cast<size_t>(n_kv));
          std::vector<TiledQuery> batch;
          for (int i = 0; i < n_q; ++i)
            batch.push_back({q.data() + i * d, fast.data() + i * d, ranges[size_t(i)].first, ranges[size_t(i)].second});
          ASSERT_TRUE(kernel(batch, kr, vr, p));
          for (int i = 0; i < n_q; ++i) {
            attend_one(q.data() + i * d, kr, vr, ranges[size_t(i)].first, ranges[size_t(i)].second, ref.data(), scratch.data(), p);
            for (int c = 0; c < d; ++c)
              ASSERT_EQ(f32_to_bits(fast[size_t(i * d + c)]), f32_to_bits(ref[size_t(c)]))
                  << (avx2_body ? "AVX2 body " : "") << "d=" << d << " cap=" << cap << " q x" << q_scale << " range=" << ranges[size_t(i)].first << ".."
                  << ranges[size_t(i)].second << " c=" << c;
          }
        }
    }
  }
  const int32_t zero = 0;
  EXPECT_FALSE(attend_tiled_batch_supported(KvRows{nullptr, &zero, 1, 0, 72}, AttentionParams{72, 0.1f, 0, true}));
  EXPECT_FALSE(attend_tiled_batch_supported(KvRows{nullptr, &zero, 1, 0, 64}, AttentionParams{64, 0.1f, 0, false}));
}

// The vector expfs the attention blocks use (AVX-512 and AVX2) against the C library's expf (the
// reference's), bit for bit, on a sweep of the whole float range (every 257th bit pattern, both
// signs, infinities and NaNs). They reproduce glibc's expf (2.27 and later; Debian 12 has 2.36), so
// the test asks for zero mismatches there, and that the kernels then take them.
// (Every float: 0 mismatches with glibc 2.36, by hand: expf8_mismatches(0, 0xffffffff, 1).)
TEST(Kernels, VectorExpfIsBitIdenticalToTheLibraryExpf) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2";
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 27)
  struct Isa {
    ExpfLanes lanes;
    bool cpu, used;
  };
  for (const Isa& isa : {Isa{ExpfLanes::kAvx2, true, use_libm_expf8_avx2()},
                         Isa{ExpfLanes::kAvx512, cpu_has_avx512bw(), use_libm_expf8()}}) {
    if (!isa.cpu) continue;
    const char* name = isa.lanes == ExpfLanes::kAvx2 ? "avx2" : "avx512";
    EXPECT_EQ(expf8_mismatches(0u, 0xffffffffu, 257, isa.lanes), 0) << name;
    EXPECT_EQ(expf8_mismatches(0xff800000u, 0xff800000u, 1, isa.lanes), 0) << name;  // -inf: 0
    EXPECT_TRUE(isa.used) << name;
  }
#else
  GTEST_SKIP() << "not glibc: its expf is what the vector ones reproduce";
#endif
}

}  // namespace
}  // namespace chassis
