// Small AVX2 building blocks shared by the dot-product and tile kernels. Header-only: every
// function carries the avx2/fma/f16c target attribute, so the translation units that include it stay
// buildable for baseline x86-64 and are only called after the CPU check.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#define CHASSIS_AVX2 __attribute__((target("avx2,fma,f16c")))
// AVX2 plus AVX-512BW/VL at 256-bit width (mask registers, byte-granular masked ops; no 512-bit
// vectors, so no frequency penalty). Only after cpu_has_avx512bw().
#define CHASSIS_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
// The same plus AVX512-VNNI (vpdpbusd: four unsigned x signed byte products summed into an int32
// lane in one instruction). Only after cpu_has_avx512vnni().
#define CHASSIS_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
// AVX2 plus AVX-VNNI: the same 256-bit vpdpbusd, VEX-encoded, on CPUs without AVX-512 (Intel's
// 12th-14th generation desktop parts). GCC inlines neither encoding's intrinsic into the other's
// target, so a 256-bit VNNI body is stamped for both. Only after cpu_has_avx_vnni().
#define CHASSIS_AVX_VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
// CHASSIS_VNNI plus GFNI (gf2p8affineqb: any linear map of a byte's bits, e.g. one bit moved to
// another place and the rest cleared, in one instruction). Ice Lake and Zen 4 on have it; Cascade
// Lake has AVX512-VNNI without it. Only after use_gfni_tiles().
#define CHASSIS_VNNI_GFNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni")))

namespace chassis::avx2 {

// fp16 -> f32 by the F16C instruction (exact, same result as core/fp16.h's software conversion).
CHASSIS_AVX2 inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Q6_K's 6-bit quants (0..63) of one half super-block: from 64 bytes of ql (b1, b2) and 32 of qh
// (bh), the four 32-quant runs in the reference's order. Run k's high bits are bits 2k..2k+1 of each
// qh byte, moved to bits 4..5 by one 16-bit shift (bits carried over from the neighbouring byte land
// outside 4..5 and the 0x30 mask drops them): 17 instructions where shifting down, masking with 3 and
// shifting up took 21.
CHASSIS_AVX2 inline void q6_k_quants(__m256i b1, __m256i b2, __m256i bh, __m256i (&q)[4]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  q[0] = _mm256_or_si256(_mm256_and_si256(b1, m4), _mm256_and_si256(_mm256_slli_epi16(bh, 4), m30));
  q[1] = _mm256_or_si256(_mm256_and_si256(b2, m4), _mm256_and_si256(_mm256_slli_epi16(bh, 2), m30));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m4), _mm256_and_si256(bh, m30));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m4), _mm256_and_si256(_mm256_srli_epi16(bh, 2), m30));
}

// hsum_float_8: lanes l and l+4, then (0+2) + (1+3).
CHASSIS_AVX2 inline float hsum8(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

// GGML_F32x8_REDUCE's tail: lanes l and l+4, then (0+1) + (2+3).
CHASSIS_AVX2 inline float hadd_reduce8(__m256 v) {
  const __m128 t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t1 = _mm_hadd_ps(t, t);
  return _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
}

struct Bf16 { uint16_t v; };  // tag type: a bf16 element

CHASSIS_AVX2 inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
CHASSIS_AVX2 inline __m256 load8(const Bf16* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
CHASSIS_AVX2 inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// 8 int32 lanes, lane l = sum of x*y over bytes 4l..4l+3 (signed x, signed y).
CHASSIS_AVX2 inline __m256i lanes_i8(__m256i x, __m256i y) {
  const __m256i dot = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
  return _mm256_madd_epi16(dot, _mm256_set1_epi16(1));
}
// Same with unsigned x (0..63) and signed y.
CHASSIS_AVX2 inline __m256i lanes_u8(__m256i x, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}
CHASSIS_AVX2 inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// 32 nibbles of a Q4 block as bytes 0..15 (low nibbles, elements 0..15) then 16..31 (high nibbles).
CHASSIS_AVX2 inline __m256i nibbles(const uint8_t* qs) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Byte p of the result is 0x10 where bit p of the 32-bit mask is set (the fifth bit of Q5 quants).
CHASSIS_AVX2 inline __m256i fifth_bits(const uint8_t qh[4]) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(int32_t(bits)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

CHASSIS_AVX2 inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Why software prefetch: on the machines we measured (virtualised Xeons), the hardware prefetcher
// follows a tile's R interleaved row streams poorly: 4 rows at a time read 4-5 GB/s from RAM per
// core, one row 5 GB/s. The R rows of a tile are adjacent in memory, so the tile reads one
// contiguous region; prefetching that region linearly, kPrefetchAhead bytes ahead of the current
// block (which runs on into the next tile's rows), reaches the core's plain read bandwidth (10 GB/s
// here). Measured on 256 MB of Q8_0: 1 KB ahead 6.9 GB/s, 4-8 KB 10.1 GB/s, 16 KB 9.9 GB/s.
constexpr int64_t kPrefetchAhead = 6144;
// Called once per block step: the tile has consumed `done` of its region's bytes, `step` per call.
CHASSIS_AVX2 inline void prefetch_ahead(const uint8_t* region, int64_t done, int64_t step) {
  const uint8_t* p = region + done + kPrefetchAhead;
  for (int64_t k = 0; k < step; k += 64) _mm_prefetch(reinterpret_cast<const char*>(p + k), _MM_HINT_T0);
}

// An 8x8 transpose in place: r[c] lane l <- r[l] lane c.
CHASSIS_AVX2 inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

}  // namespace chassis::avx2
