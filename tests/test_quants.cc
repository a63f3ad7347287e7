// Block formats: round trips for the formats we can encode, known values for the k-quants (the
// expected numbers computed element by element straight from the format's definition), and the
// reference dot product against dequantize-then-dot for every type.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/quants.h"
#include "test_util.h"

namespace chassis {
namespace {

using test::random_floats;

void expect_round_trip(DType t, float tolerance_of_range) {
  for (int64_t blocks : {1, 3, 7}) {
    const int64_t n = blocks * dtype_info(t).block_size;
    auto x = random_floats(size_t(n), uint32_t(blocks) * 7 + 1);
    std::vector<uint8_t> q(size_t(row_bytes(t, n)));
    quantize_row(t, x.data(), q.data(), n);
    std::vector<float> y(static_cast<size_t>(n));
    dequantize_row(t, q.data(), y.data(), n);
    const int64_t bs = dtype_info(t).block_size;
    for (int64_t b = 0; b < n / bs; ++b) {
      float mn = INFINITY, mx = -INFINITY;
      for (int64_t j = 0; j < bs; ++j) { mn = std::min(mn, x[b * bs + j]); mx = std::max(mx, x[b * bs + j]); }
      const float range = std::max(std::fabs(mn), std::fabs(mx)) * 2;
      for (int64_t j = 0; j < bs; ++j)
        ASSERT_NEAR(y[b * bs + j], x[b * bs + j], range * tolerance_of_range) << dtype_name(t) << " block " << b << " j " << j;
    }
  }
}

// Step of each format is range/levels; allow one step (rounding to nearest is half a step).
TEST(Quants, RoundTripQ4_0) { expect_round_trip(DType::Q4_0, 1.0f / 15); }
TEST(Quants, RoundTripQ4_1) { expect_round_trip(DType::Q4_1, 1.0f / 15); }
TEST(Quants, RoundTripQ5_0) { expect_round_trip(DType::Q5_0, 1.0f / 31); }
TEST(Quants, RoundTripQ5_1) { expect_round_trip(DType::Q5_1, 1.0f / 31); }
TEST(Quants, RoundTripQ8_0) { expect_round_trip(DType::Q8_0, 1.0f / 254 * 1.01f); }
TEST(Quants, RoundTripQ8_1) { expect_round_trip(DType::Q8_1, 1.0f / 254 * 1.01f); }
TEST(Quants, RoundTripQ8_K) { expect_round_trip(DType::Q8_K, 1.0f / 254 * 1.01f); }
TEST(Quants, RoundTripF16) { expect_round_trip(DType::F16, 1e-3f); }
TEST(Quants, RoundTripBF16) { expect_round_trip(DType::BF16, 1e-2f); }

TEST(Quants, Q4_0KnownBlock) {
  BlockQ4_0 b{};
  b.d = f32_to_f16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = uint8_t(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(DType::Q4_0, &b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 0.5f);
    EXPECT_EQ(y[j + 16], (15 - j - 8) * 0.5f);
  }
}

TEST(Quants, Q8_1SumField) {
  auto x = random_floats(32, 3);
  BlockQ8_1 b;
  quantize_row(DType::Q8_1, x.data(), &b, 32);
  int s = 0;
  for (int j = 0; j < 32; ++j) s += b.qs[j];
  EXPECT_NEAR(f16_to_f32(b.s), f16_to_f32(b.d) * s, std::fabs(f16_to_f32(b.d) * s) * 1e-3 + 1e-6);
}

// Fills a block with a deterministic byte pattern, then sets its fp16 fields to sane scales.
template <typename B>
B patterned_block(uint32_t seed) {
  B b;
  std::mt19937 rng(seed);
  auto* p = reinterpret_cast<uint8_t*>(&b);
  for (size_t i = 0; i < sizeof(B); ++i) p[i] = uint8_t(rng());
  return b;
}

TEST(Quants, Q2_KKnownValues) {
  auto b = patterned_block<BlockQ2_K>(11);
  b.d = f32_to_f16(0.25f);
  b.dmin = f32_to_f16(0.125f);
  float y[256];
  dequantize_row(DType::Q2_K, &b, y, 256);
  for (int i = 0; i < 256; ++i) {
    // element i: half h = i/128, within it shift s = (i%128)/32, l = i%32; quant byte qs[h*32 + l], bits 2s..2s+1;
    // sub-block (16 elements) index i/16 holds scale (low nibble) and min (high nibble).
    const int h = i / 128, s = (i % 128) / 32, l = i % 32;
    const int q = (b.qs[h * 32 + l] >> (2 * s)) & 3;
    const int sc = b.scales[i / 16];
    EXPECT_FLOAT_EQ(y[i], 0.25f * (sc & 15) * q - 0.125f * (sc >> 4)) << i;
  }
}

TEST(Quants, Q3_KKnownValues) {
  auto b = patterned_block<BlockQ3_K>(12);
  b.d = f32_to_f16(0.5f);
  float y[256];
  dequantize_row(DType::Q3_K, &b, y, 256);
  for (int i = 0; i < 256; ++i) {
    const int h = i / 128, s = (i % 128) / 32, l = i % 32;
    const int low = (b.qs[h * 32 + l] >> (2 * s)) & 3;
    const int high_set = (b.hmask[l] >> (h * 4 + s)) & 1;
    // 16 six-bit scales: low 4 bits packed in bytes 0..7 (nibbles), high 2 bits in bytes 8..11.
    const int j = i / 16;
    const int lo4 = j < 8 ? (b.scales[j] & 15) : (b.scales[j - 8] >> 4);
    const int hi2 = (b.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    const int scale = (lo4 | (hi2 << 4)) - 32;
    EXPECT_FLOAT_EQ(y[i], 0.5f * scale * (low - (high_set ? 0 : 4))) << i;
  }
}

// Q4_K / Q5_K 6-bit scale j (0..7) and min j from the 12-byte array.
void k4_scale_min(const uint8_t* s, int j, int& sc, int& mn) {
  if (j < 4) {
    sc = s[j] & 63;
    mn = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

TEST(Quants, Q4_KKnownValues) {
  auto b = patterned_block<BlockQ4_K>(13);
  b.d = f32_to_f16(0.0625f);
  b.dmin = f32_to_f16(0.03125f);
  float y[256];
  dequantize_row(DType::Q4_K, &b, y, 256);
  for (int i = 0; i < 256; ++i) {
    const int sub = i / 32;               // 8 sub-blocks of 32
    const int byte = (i / 64) * 32 + i % 32;
    const int q = (sub % 2 == 0) ? (b.qs[byte] & 15) : (b.qs[byte] >> 4);
    int sc, mn;
    k4_scale_min(b.scales, sub, sc, mn);
    EXPECT_FLOAT_EQ(y[i], 0.0625f * sc * q - 0.03125f * mn) << i;
  }
}

TEST(Quants, Q5_KKnownValues) {
  auto b = patterned_block<BlockQ5_K>(14);
  b.d = f32_to_f16(0.0625f);
  b.dmin = f32_to_f16(0.03125f);
  float y[256];
  dequantize_row(DType::Q5_K, &b, y, 256);
  for (int i = 0; i < 256; ++i) {
    const int sub = i / 32;
    const int byte = (i / 64) * 32 + i % 32;
    const int lo = (sub % 2 == 0) ? (b.qs[byte] & 15) : (b.qs[byte] >> 4);
    const int hi = (b.qh[i % 32] >> sub) & 1;  // sub-block k uses bit k of qh[l]
    int sc, mn;
    k4_scale_min(b.scales, sub, sc, mn);
    EXPECT_FLOAT_EQ(y[i], 0.0625f * sc * (lo + 16 * hi) - 0.03125f * mn) << i;
  }
}

TEST(Quants, Q6_KKnownValues) {
  auto b = patterned_block<BlockQ6_K>(15);
  b.d = f32_to_f16(0.01f);
  float y[256];
  dequantize_row(DType::Q6_K, &b, y, 256);
  const float d = f16_to_f32(b.d);
  for (int i = 0; i < 256; ++i) {
    // halves of 128; within a half, quarter k = (i%128)/32 takes low nibble (k<2) or high nibble (k>=2)
    // of ql[h*64 + (k%2)*32 + l] and bits 2k..2k+1 of qh[h*32 + l]; scale per 16 elements.
    const int h = i / 128, k = (i % 128) / 32, l = i % 32;
    const uint8_t qlb = b.ql[h * 64 + (k % 2) * 32 + l];
    const int lo = k < 2 ? (qlb & 15) : (qlb >> 4);
    const int hi = (b.qh[h * 32 + l] >> (2 * k)) & 3;
    const int q = (lo | (hi << 4)) - 32;
    const int sc = b.scales[i / 16];
    EXPECT_FLOAT_EQ(y[i], d * sc * q) << i;
  }
}

TEST(Quants, Q5_0AndQ5_1HighBits) {
  BlockQ5_0 b{};
  b.d = f32_to_f16(1.0f);
  const uint32_t qh = 0x80000001u;  // element 0 and element 31 have the high bit
  std::memcpy(b.qh, &qh, 4);
  float y[32];
  dequantize_row(DType::Q5_0, &b, y, 32);
  EXPECT_EQ(y[0], 0.0f);    // 16 - 16
  EXPECT_EQ(y[1], -16.0f);
  EXPECT_EQ(y[31], 0.0f);
  BlockQ5_1 c{};
  c.d = f32_to_f16(1.0f);
  c.m = f32_to_f16(-1.0f);
  std::memcpy(c.qh, &qh, 4);
  dequantize_row(DType::Q5_1, &c, y, 32);
  EXPECT_EQ(y[0], 15.0f);
  EXPECT_EQ(y[1], -1.0f);
}

// vec_dot(w, quantize(x)) must equal the dot of the dequantized row with the dequantized activations.
TEST(Quants, VecDotMatchesDequantizedDotForEveryType) {
  const DType types[] = {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                         DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};
  for (DType t : types) {
    const DTypeInfo& info = dtype_info(t);
    const int64_t n = (info.block_size == 1 ? 263 : info.block_size * 3);  // odd sizes
    std::vector<uint8_t> w(size_t(row_bytes(t, n)));
    if (can_quantize(t)) {
      auto wf = random_floats(size_t(n), 5);
      quantize_row(t, wf.data(), w.data(), n);
    } else {
      std::mt19937 rng(9);
      for (auto& byte : w) byte = uint8_t(rng());
      // keep fp16 scales finite: rewrite every block's scale fields with small values
      for (int64_t b = 0; b < n / info.block_size; ++b) {
        uint8_t* blk = w.data() + b * info.block_bytes;
        const uint16_t s = f32_to_f16(0.01f);
        switch (t) {
          case DType::Q2_K: std::memcpy(blk + 80, &s, 2); std::memcpy(blk + 82, &s, 2); break;
          case DType::Q3_K: std::memcpy(blk + 108, &s, 2); break;
          case DType::Q4_K: case DType::Q5_K: std::memcpy(blk, &s, 2); std::memcpy(blk + 2, &s, 2); break;
          case DType::Q6_K: std::memcpy(blk + 208, &s, 2); break;
          default: break;
        }
      }
    }
    auto x = random_floats(size_t(n), 6);
    const DType at = info.vec_dot_type;
    std::vector<uint8_t> a(size_t(row_bytes(at, n)));
    quantize_row(at, x.data(), a.data(), n);
    std::vector<float> wd(static_cast<size_t>(n)), ad(static_cast<size_t>(n));
    dequantize_row(t, w.data(), wd.data(), n);
    dequantize_row(at, a.data(), ad.data(), n);
    double ref = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      ref += double(wd[size_t(i)]) * ad[size_t(i)];
      mag += std::fabs(double(wd[size_t(i)]) * ad[size_t(i)]);
    }
    // Q4_1/Q5_1 take the minimum's contribution through the activation block's fp16 sum s, as the
    // reference does: allow for that rounding (half an fp16 ulp of m*s per block).
    double min_term = 0;
    if (at == DType::Q8_1)
      for (int64_t b = 0; b < n / QK; ++b) {
        const auto* ab = reinterpret_cast<const BlockQ8_1*>(a.data()) + b;
        const uint16_t m = t == DType::Q4_1 ? reinterpret_cast<const BlockQ4_1*>(w.data())[b].m
                                            : reinterpret_cast<const BlockQ5_1*>(w.data())[b].m;
        min_term += std::fabs(f16_to_f32(m) * f16_to_f32(ab->s)) * 1e-3;
      }
    for (int64_t rows : {1, 5}) {
      EXPECT_NEAR(vec_dot(t, w.data(), a.data(), n, rows, 0), ref, mag * 1e-5 + min_term + 1e-6) << dtype_name(t);
    }
    // and activation quantization stays close to the float activations
    double exact = 0;
    for (int64_t i = 0; i < n; ++i) exact += double(wd[size_t(i)]) * x[size_t(i)];
    EXPECT_NEAR(ref, exact, mag * 0.02 + 1e-4) << dtype_name(t);
  }
}

}  // namespace
}  // namespace chassis
