// What the interleaved-weight tiles share (kernels/interleave.h): activation helpers, and the
// drivers that walk a problem's groups of eight rows through a type's 256-bit (x8) and 512-bit (x16)
// tiles. Included only by the interleaved tile files (matmul_interleaved_*.cc).
#pragma once
#include "kernels/cpu/avx512_util.h"  // first: see there

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/matmul_avx2.h"
#include "kernels/cpu/tile_dispatch.h"
#include "kernels/interleave.h"

namespace chassis::interleaved {
using namespace avx2;

// The problem from group k on (its first weight group and output row).
inline TileProblem group_problem(const TileProblem& p, int64_t k) {
  TileProblem g = p;
  g.w = p.w + k * p.w_stride;
  g.y = p.y + k * kInterleavedRows;
  return g;
}

// Four activation quants (bytes p..p+3) in every 4-byte lane.
CHASSIS_AVX2 inline __m256i broadcast_lane(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}
CHASSIS_AVX512 inline __m512i broadcast_lane512(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}
CHASSIS_AVX2 inline const BlockQ8_0& act_block(const TileProblem& p, int t, int64_t i) {
  return reinterpret_cast<const BlockQ8_0*>(p.act + t * p.act_stride)[i];
}
// d_w * d_a for the eight rows (the reference's float product, per row).
CHASSIS_AVX2 inline __m256 row_times_act_scales(const uint16_t (&d)[8], const BlockQ8_0& a) {
  return _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d))), _mm256_set1_ps(h2f(a.d)));
}

// The same for a pair of groups (16 rows: the first group's eight, then the second's).
CHASSIS_AVX512 inline __m512 pair_times_act_scales(const uint16_t (&d0)[8], const uint16_t (&d1)[8], const BlockQ8_0& a) {
  return _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(d1),
                                                          reinterpret_cast<const __m128i*>(d0))),
                       _mm512_set1_ps(h2f(a.d)));
}
// hsum8 of each row, its lanes being acc[0..7]: (l, l+4) first, then (0+2) + (1+3).
CHASSIS_AVX2 inline __m256 hsum8_across(const __m256 (&acc)[8]) {
  __m256 r[4];
  for (int l = 0; l < 4; ++l) r[l] = _mm256_add_ps(acc[l + 4], acc[l]);
  return _mm256_add_ps(_mm256_add_ps(r[0], r[2]), _mm256_add_ps(r[1], r[3]));
}
// hsum8 of each of 16 rows whose lanes are acc[0..7] (hsum8_across, both halves at once).
CHASSIS_AVX512 inline __m512 hsum8_across512(const __m512 (&acc)[8]) {
  __m512 r[4];
  for (int l = 0; l < 4; ++l) r[l] = _mm512_add_ps(acc[l + 4], acc[l]);
  return _mm512_add_ps(_mm512_add_ps(r[0], r[2]), _mm512_add_ps(r[1], r[3]));
}

// The unsigned 5-bit quants of lanes k (low) and k + 4 (high) of the eight rows.
// (Q5_0 and Q5_1: BlockQ5_0x8 or BlockQ5_1x8.)
template <int K, typename BX8>
CHASSIS_AVX2 inline void q5_lanes(const BX8& b, __m256i qh, __m256i& low, __m256i& high) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
  const __m256i raw = load256(b.qs[K]);
  // Bit K of each qh byte is the fifth bit of the low element, bit 4 + K of the high one. The 16-bit
  // shifts carry bits across bytes only into bits below 4, which the mask drops.
  low = _mm256_or_si256(_mm256_and_si256(raw, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4 - K), bit4));
  high = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw, 4), low4), _mm256_and_si256(_mm256_srli_epi16(qh, K), bit4));
}

// The same with GFNI: each fifth bit moved to bit 4 of its byte, every other bit cleared, by one
// gf2p8affineqb (output bit i of a byte is the parity of matrix byte 7 - i AND the input byte: the
// matrix's byte 3 picks the input bit for bit 4), then merged with its nibble by one vpternlogd,
// (a & 0x0F) | b. Five instructions for the two lanes instead of nine.
template <int K, typename BX8>
CHASSIS_VNNI_GFNI inline void q5_lanes_gfni(const BX8& b, __m256i qh, __m256i& low, __m256i& high) {
  constexpr int kNibbleOrBit = 0xEC;  // (A & C) | B, with A = 0xF0, B = 0xCC, C = 0xAA
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i raw = load256(b.qs[K]);
  const __m256i low_bit = _mm256_gf2p8affine_epi64_epi8(qh, _mm256_set1_epi64x(int64_t(uint64_t(1) << (24 + K))), 0);
  const __m256i high_bit = _mm256_gf2p8affine_epi64_epi8(qh, _mm256_set1_epi64x(int64_t(uint64_t(1) << (28 + K))), 0);
  low = _mm256_ternarylogic_epi32(raw, low_bit, low4, kNibbleOrBit);
  high = _mm256_ternarylogic_epi32(_mm256_srli_epi16(raw, 4), high_bit, low4, kNibbleOrBit);
}

// One lane of the eight rows: acc = fma(d, start + sum(q * y), acc) (Q5_0: start = -16 * sum(y)).
CHASSIS_AVX2 inline __m256 q5_lane_fma(__m256i q, const int8_t* y, int32_t start, __m256 d, __m256 acc) {
  const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(q, broadcast_lane(y)), _mm256_set1_epi16(1));
  return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_add_epi32(sums, _mm256_set1_epi32(start))), acc);
}
// The same by one vpdpbusd that starts at `start` (both 256-bit encodings, see CHASSIS_AVX_VNNI).
CHASSIS_VNNI inline __m256 q5_lane_fma_vnni256(__m256i q, const int8_t* y, int32_t start, __m256 d, __m256 acc) {
  return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_set1_epi32(start), q, broadcast_lane(y))), acc);
}
CHASSIS_AVX_VNNI inline __m256 q5_lane_fma_avx_vnni(__m256i q, const int8_t* y, int32_t start, __m256 d, __m256 acc) {
  return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_dpbusd_avx_epi32(_mm256_set1_epi32(start), q, broadcast_lane(y))), acc);
}

// Q5_0/Q5_1 quants unpacked once per block for several tokens: the eight lanes' registers, in order.
// Staging buffers are cache-line aligned (C++17's aligned new gives std::vector that): a load that
// straddles two lines costs two, and a 16-byte-aligned heap buffer split most of them.
struct alignas(64) Q5Unpacked {
  uint8_t lane[8][32];
};

// All eight lanes of a block of eight rows, in order.
template <typename BX8>
CHASSIS_AVX2 inline void q5_block_lanes(const BX8& b, __m256i (&lane)[8]) {
  const __m256i qh = load256(b.qh);
  q5_lanes<0>(b, qh, lane[0], lane[4]);
  q5_lanes<1>(b, qh, lane[1], lane[5]);
  q5_lanes<2>(b, qh, lane[2], lane[6]);
  q5_lanes<3>(b, qh, lane[3], lane[7]);
}

// The eight lanes of a block, by type: Q5_0's and Q5_1's as above; Q4_1's nibbles as Q4_0's layout
// holds them (qs[k]: lane k in the low nibbles, lane k + 4 in the high ones).
CHASSIS_AVX2 inline void block_lanes(const BlockQ5_0x8& b, __m256i (&lane)[8]) { q5_block_lanes(b, lane); }
CHASSIS_AVX2 inline void block_lanes(const BlockQ5_1x8& b, __m256i (&lane)[8]) { q5_block_lanes(b, lane); }
CHASSIS_AVX2 inline void block_lanes(const BlockQ4_1x8& b, __m256i (&lane)[8]) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int k = 0; k < 4; ++k) {
    const __m256i raw = load256(b.qs[k]);
    lane[k] = _mm256_and_si256(raw, low4);
    lane[k + 4] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
  }
}

// A group's blocks (nb = p.n / QK) unpacked into `unpacked`, for several tokens (Q5_0, Q4_1, Q5_1).
template <typename BX8>
CHASSIS_AVX2 void unpack_group(const TileProblem& p, Q5Unpacked* unpacked) {
  const auto* w = reinterpret_cast<const BX8*>(p.w);
  for (int64_t i = 0; i < p.n / QK; ++i) {
    prefetch_ahead(p.w, i * int64_t(sizeof(BX8)), int64_t(sizeof(BX8)));
    __m256i lane[8];
    block_lanes(w[i], lane);
    for (int l = 0; l < 8; ++l) _mm256_store_si256(reinterpret_cast<__m256i*>(unpacked[i].lane[l]), lane[l]);
  }
}

// One lane of sixteen rows: acc = fma(d, start + sum(q * y), acc), as q5_lane_fma.
CHASSIS_AVX512 inline __m512 q5_lane_fma512(__m512i q, const int8_t* y, int32_t start, __m512 d, __m512 acc) {
  const __m512i sums = _mm512_madd_epi16(_mm512_maddubs_epi16(q, broadcast_lane512(y)), _mm512_set1_epi16(1));
  return _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(_mm512_add_epi32(sums, _mm512_set1_epi32(start))), acc);
}
// The same by one vpdpbusd that starts at `start`.
CHASSIS_VNNI inline __m512 q5_lane_fma_vnni(__m512i q, const int8_t* y, int32_t start, __m512 d, __m512 acc) {
  const __m512i sums = _mm512_dpbusd_epi32(_mm512_set1_epi32(start), q, broadcast_lane512(y));
  return _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sums), acc);
}

// A pair of groups' quants unpacked for several tokens: lane l, the first group's 32 bytes, then the
// second's (Q5_0, Q4_1, Q5_1).
struct alignas(64) Q5UnpackedPair {
  uint8_t lane[8][64];
};
// A pair of groups (p.w and p.w_stride further) unpacked into `unpacked` (Q5_0, Q4_1, Q5_1).
template <typename BX8>
CHASSIS_AVX2 void unpack_pair(const TileProblem& p, Q5UnpackedPair* unpacked) {
  for (int g = 0; g < 2; ++g) {
    const auto* w = reinterpret_cast<const BX8*>(p.w + g * p.w_stride);
    for (int64_t i = 0; i < p.n / QK; ++i) {
      __m256i lane[8];
      block_lanes(w[i], lane);
      for (int l = 0; l < 8; ++l) _mm256_store_si256(reinterpret_cast<__m256i*>(unpacked[i].lane[l] + 32 * g), lane[l]);
    }
  }
}

// One token over a staged pair of groups (p at the pair's first group).
using PairTokenFn = void (*)(const TileProblem& p, const Q5UnpackedPair* unpacked, int t);
// Pairs of groups from group k on, while two are left: each pair's quants unpacked once, then every
// token through `token` over them (Q5_0, Q4_1, Q5_1 prefill). Returns the first group not done.
template <typename BX8>
int64_t run_unpacked_pairs(const TileProblem& p, int64_t k, PairTokenFn token) {
  thread_local std::vector<Q5UnpackedPair> staged;
  if (staged.size() < size_t(p.n / QK)) staged.resize(size_t(p.n / QK));
  for (; k + 2 <= p.n_rows / kInterleavedRows; k += 2) {
    const TileProblem g = group_problem(p, k);
    unpack_pair<BX8>(g, staged.data());
    for (int t = 0; t < p.n_tok; ++t) token(g, staged.data(), t);
  }
  return k;
}

// 8 fp16 values of each of two groups, widened: the first group's in the low half.
CHASSIS_AVX512 inline __m512 pair_ph_to_ps(const uint16_t (&first)[8], const uint16_t (&second)[8]) {
  return _mm512_cvtph_ps(_mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(second), reinterpret_cast<const __m128i*>(first)));
}

// Groups [k_begin, k_end), kGroups at a time, through K's token tiles; tokens innermost, so the
// groups' blocks stay in L1/L2 while every token passes over them.
template <class K, int kGroups>
void run_token_tiles(const TileProblem& p, int64_t k_begin, int64_t k_end) {
  for (int64_t k = k_begin; k + kGroups <= k_end; k += kGroups) {
    const TileProblem groups = group_problem(p, k);
    for (int64_t t = 0; t < p.n_tok; t += K::kToks) {
      TileProblem g = groups;
      g.act = p.act + t * p.act_stride;
      if (p.act_sums) g.act_sums = p.act_sums + t * p.act_sums_stride;
      g.y = groups.y + t * p.y_stride;
      with_constant<K::kToks>(int(std::min<int64_t>(K::kToks, p.n_tok - t)), [&]<int T>() { K::template tile<T>(g); });
    }
  }
}

// Every group through K8's 256-bit tiles, or pairs of groups through K16's 512-bit ones (and an odd
// last group through K8's); a single token through K16 only where K16::kOneToken.
template <class K16, class K8>
void run_groups(const TileProblem& p) {
  const int64_t n_groups = p.n_rows / kInterleavedRows;
  const bool pairs = use_avx512_tiles() && (p.n_tok > 1 || K16::kOneToken);
  const int64_t paired = pairs ? n_groups / 2 * 2 : 0;
  run_token_tiles<K16, 2>(p, 0, paired);
  run_token_tiles<K8, 1>(p, paired, n_groups);
}

// The Q4_K, Q5_K, and Q4_1 / Q5_1 problems (matmul_interleaved_q4_k_avx2.cc, _q5_k_avx2.cc,
// _q8_1_avx2.cc).
void matmul_interleaved_q4_k(const TileProblem& p);
void matmul_interleaved_q5_k(const TileProblem& p);
void matmul_interleaved_q8_1(DType wt, const TileProblem& p);

}  // namespace chassis::interleaved
