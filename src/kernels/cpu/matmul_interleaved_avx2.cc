// Tiles for weights interleaved eight rows at a time (Q4_0, Q5_0, Q8_0 here; Q4_K, Q5_K, Q4_1 and Q5_1 in their own files) (kernels/interleave.h). One 32-byte load holds
// the same four quant bytes of all eight rows, so the integer dot of a 4-byte lane against a
// broadcast activation lane leaves row r's sum in int32 lane r: no per-row unpacking, no horizontal
// sums, and the rows' scales arrive in one load. Each row's float operations are still exactly those
// of its reference dot product (kernels/ref/dot.cc), so results are bit-identical to vec_dot() on the
// original rows. The *x8 tiles are AVX2; the *x16 ones (AVX-512BW, only after use_avx512_tiles())
// take two adjacent groups in 512-bit registers, each half doing exactly the 256-bit operations.
// Q4_K's tiles are in matmul_interleaved_q4_k_avx2.cc; what both files share, in interleaved_tiles.h.
#include "kernels/cpu/interleaved_tiles.h"  // first: it includes avx512_util.h first

#include <vector>

namespace chassis {
namespace {
using namespace interleaved;

// ---- Q4_0 (reference: one exact integer sum per block, then acc = fma(sum, d_w*d_a, acc) in block
// order). Quants are read unsigned (0..15); the offset of 8 comes back through the activation block's
// sum. Lane r of every vector is row r.

// The eight rows' exact sums of (q - 8) * y over a block, from the unsigned quants of lanes k (lo)
// and k + 4 (hi) and the activation block's sum: eight int16 terms per row by maddubs, each
// |x| <= 2 * 15 * 128 (their sum stays below 2^15), one madd; or (VNNI) eight vpdpbusd in two
// chains, the first starting at -8 x the block's sum.
CHASSIS_AVX2 inline __m256i q4_0_block_sums(const __m256i (&lo)[4], const __m256i (&hi)[4], const int8_t* y, int32_t block_sum) {
  __m256i s16[4];
  for (int k = 0; k < 4; ++k)
    s16[k] = _mm256_add_epi16(_mm256_maddubs_epi16(lo[k], broadcast_lane(y + 4 * k)),
                              _mm256_maddubs_epi16(hi[k], broadcast_lane(y + 16 + 4 * k)));
  const __m256i sums = _mm256_madd_epi16(_mm256_add_epi16(_mm256_add_epi16(s16[0], s16[1]), _mm256_add_epi16(s16[2], s16[3])),
                                         _mm256_set1_epi16(1));
  return _mm256_sub_epi32(sums, _mm256_set1_epi32(8 * block_sum));
}
// The VNNI version for both encodings of a 256-bit vpdpbusd (see CHASSIS_AVX_VNNI): NAME, TARGET, DPBUSD.
#define CHASSIS_Q4_0_BLOCK_SUMS_VNNI(NAME, TARGET, DPBUSD) \
  TARGET inline __m256i NAME(const __m256i (&lo)[4], const __m256i (&hi)[4], const int8_t* y, int32_t block_sum) { \
    __m256i s_lo = _mm256_set1_epi32(-8 * block_sum), s_hi = _mm256_setzero_si256(); \
    for (int k = 0; k < 4; ++k) { \
      s_lo = DPBUSD(s_lo, lo[k], broadcast_lane(y + 4 * k)); \
      s_hi = DPBUSD(s_hi, hi[k], broadcast_lane(y + 16 + 4 * k)); \
    } \
    return _mm256_add_epi32(s_lo, s_hi); \
  }
CHASSIS_Q4_0_BLOCK_SUMS_VNNI(q4_0_block_sums_vnni, CHASSIS_VNNI, _mm256_dpbusd_epi32)
CHASSIS_Q4_0_BLOCK_SUMS_VNNI(q4_0_block_sums_avx_vnni, CHASSIS_AVX_VNNI, _mm256_dpbusd_avx_epi32)
#undef CHASSIS_Q4_0_BLOCK_SUMS_VNNI

// The tile body for three targets, its block sums by SUMS.
#define CHASSIS_DEFINE_Q4_0_GROUP_TILE(NAME, TARGET, SUMS) \
struct NAME { \
  static constexpr int kToks = 3; \
  template <int T> \
  TARGET static void tile(const TileProblem& p) { \
    const auto* w = reinterpret_cast<const BlockQ4_0x8*>(p.w); \
    __m256 acc[T]; \
    for (auto& a : acc) a = _mm256_setzero_ps(); \
    const __m256i low4 = _mm256_set1_epi8(0x0F); \
    const int64_t nb = p.n / QK; \
    for (int64_t i = 0; i < nb; ++i) { \
      prefetch_ahead(p.w, i * int64_t(sizeof(BlockQ4_0x8)), int64_t(sizeof(BlockQ4_0x8))); \
      __m256i lo[4], hi[4];  /* lane bytes (r, j): row r's element 4k + j / 16 + 4k + j */ \
      for (int k = 0; k < 4; ++k) { \
        const __m256i raw = load256(w[i].qs[k]); \
        lo[k] = _mm256_and_si256(raw, low4); \
        hi[k] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4); \
      } \
      const uint16_t(&d)[8] = w[i].d; \
      for (int t = 0; t < T; ++t) { \
        const BlockQ8_0& a = act_block(p, t, i); \
        const __m256i sums = SUMS(lo, hi, a.qs, p.act_sums[t * p.act_sums_stride + i]); \
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), row_times_act_scales(d, a), acc[t]); \
      } \
    } \
    for (int t = 0; t < T; ++t) _mm256_storeu_ps(p.y + t * p.y_stride, acc[t]); \
  } \
};
CHASSIS_DEFINE_Q4_0_GROUP_TILE(TileQ4_0x8, CHASSIS_AVX2, q4_0_block_sums)
CHASSIS_DEFINE_Q4_0_GROUP_TILE(TileQ4_0x8Vnni, CHASSIS_VNNI, q4_0_block_sums_vnni)
CHASSIS_DEFINE_Q4_0_GROUP_TILE(TileQ4_0x8AvxVnni, CHASSIS_AVX_VNNI, q4_0_block_sums_avx_vnni)
#undef CHASSIS_DEFINE_Q4_0_GROUP_TILE

// The chunked one-token tiles (wide rows) read two groups' blocks in pieces: blocks [c, end) of
// group g, then of group g + 1, then the next chunk. PiecePrefetch prefetches kPrefetchAhead bytes
// ahead in that reading order: within the piece, then on into the piece read after it (the next
// group's chunk; the first group's next chunk; after the last, the groups that follow these two).
struct PiecePrefetch {
  const uint8_t* piece;  // block c of this group
  const uint8_t* next;   // the first block read after this piece
  int64_t bytes;         // of this piece
  PiecePrefetch(const TileProblem& p, int g, int64_t c, int64_t end, int64_t nb, int64_t step)
      : piece(p.w + g * p.w_stride + c * step),
        next(g == 0 ? p.w + p.w_stride + c * step : end < nb ? p.w + end * step : p.w + 2 * p.w_stride),
        bytes((end - c) * step) {}
  // Before reading the piece's block j (from 0), step bytes a block.
  CHASSIS_AVX2 void operator()(int64_t j, int64_t step) const {
    const int64_t ahead = j * step + kPrefetchAhead;
    const uint8_t* at = ahead < bytes ? piece + ahead : next + (ahead - bytes);
    for (int64_t k = 0; k < step; k += 64) _mm_prefetch(reinterpret_cast<const char*>(at + k), _MM_HINT_T0);
  }
};

// One token over two groups of wide Q4_0 rows in chunks, as TileQ8_0x8::groups_chunked_vnni (see
// there for why): each group's accumulator carried from chunk to chunk, so the same sums in the same
// order as TileQ4_0x8Vnni. A Q4_0 block and its activation are 144 + 38 bytes, so only rows of 192+
// blocks lose the activations between two reads (one core: 8192-wide rows streamed at 29 GB/s
// against 35-36 for 896-4864). Llama-3.2-1B Q4_0 decode (--ab): 1.026, 1.017, 1.025.
constexpr int64_t kQ4_0ChunkedMinBlocks = 192, kQ4_0ChunkBlocks = 32;
CHASSIS_VNNI void q4_0_groups_chunked_vnni(const TileProblem& p) {
  const int64_t nb = p.n / QK, step = int64_t(sizeof(BlockQ4_0x8));
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  alignas(32) float carried[2][8] = {};
  for (int64_t c = 0; c < nb; c += kQ4_0ChunkBlocks) {
    const int64_t end = std::min(nb, c + kQ4_0ChunkBlocks);
    for (int g = 0; g < 2; ++g) {
      const auto* w = reinterpret_cast<const BlockQ4_0x8*>(p.w + g * p.w_stride);
      const PiecePrefetch prefetch(p, g, c, end, nb, step);
      __m256 acc = _mm256_load_ps(carried[g]);
      for (int64_t i = c; i < end; ++i) {
        prefetch(i - c, step);
        __m256i lo[4], hi[4];
        for (int k = 0; k < 4; ++k) {
          const __m256i raw = load256(w[i].qs[k]);
          lo[k] = _mm256_and_si256(raw, low4);
          hi[k] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
        }
        const BlockQ8_0& a = act_block(p, 0, i);
        const __m256i sums = q4_0_block_sums_vnni(lo, hi, a.qs, p.act_sums[i]);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), row_times_act_scales(w[i].d, a), acc);
      }
      _mm256_store_ps(carried[g], acc);
    }
  }
  _mm256_storeu_ps(p.y, _mm256_load_ps(carried[0]));
  _mm256_storeu_ps(p.y + kInterleavedRows, _mm256_load_ps(carried[1]));
}

// Block i of a pair of Q4_0 groups (prefetching ahead): the unsigned quants of lanes k (low
// nibbles) and k + 4 (high) of the 16 rows, and the rows' scales.
CHASSIS_AVX512 inline __m512 q4_0_pair_block(const TileProblem& p, const BlockQ4_0x8& b0, const BlockQ4_0x8& b1, int64_t i,
                                              __m512i (&lo)[4], __m512i (&hi)[4]) {
  prefetch_ahead(p.w, i * int64_t(sizeof(BlockQ4_0x8)), int64_t(sizeof(BlockQ4_0x8)));
  prefetch_ahead(p.w + p.w_stride, i * int64_t(sizeof(BlockQ4_0x8)), int64_t(sizeof(BlockQ4_0x8)));
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (int k = 0; k < 4; ++k) {
    const __m512i raw = _mm512_inserti64x4(_mm512_castsi256_si512(load256(b0.qs[k])), load256(b1.qs[k]), 1);
    lo[k] = _mm512_and_si512(raw, low4);
    hi[k] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
  }
  return _mm512_cvtph_ps(_mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(b1.d), reinterpret_cast<const __m128i*>(b0.d)));
}

// The same with 512-bit registers over two adjacent groups (16 rows: lanes 0..7 the first group's
// rows, 8..15 the second's). Each row's integer sum and float operations are unchanged; one
// instruction now does the work of two (this CPU has two 512-bit FMA/ALU ports).
struct TileQ4_0x16 {
  static constexpr int kToks = 4;
  // Decode stays on the 256-bit tiles: faster on weights streamed from memory (bench_kernels, one
  // sitting: 10.4 -> 11.2 GB/s one thread, 20.7 -> 22.0 two), though slower on a cache-resident matrix.
  static constexpr bool kOneToken = false;
  template <int T>
  CHASSIS_AVX512 static void tile(const TileProblem& p) {
    const auto* w0 = reinterpret_cast<const BlockQ4_0x8*>(p.w);
    const auto* w1 = reinterpret_cast<const BlockQ4_0x8*>(p.w + p.w_stride);
    __m512 acc[T];
    for (auto& a : acc) a = _mm512_setzero_ps();
    const __m512i ones = _mm512_set1_epi16(1);
    const int64_t nb = p.n / QK;
    for (int64_t i = 0; i < nb; ++i) {
      __m512i lo[4], hi[4];
      const __m512 dw = q4_0_pair_block(p, w0[i], w1[i], i, lo, hi);
      for (int t = 0; t < T; ++t) {
        const BlockQ8_0& a = act_block(p, t, i);
        __m512i s16[4];
        for (int k = 0; k < 4; ++k)
          s16[k] = _mm512_add_epi16(_mm512_maddubs_epi16(lo[k], broadcast_lane512(a.qs + 4 * k)),
                                    _mm512_maddubs_epi16(hi[k], broadcast_lane512(a.qs + 16 + 4 * k)));
        const __m512i sums = _mm512_madd_epi16(
            _mm512_add_epi16(_mm512_add_epi16(s16[0], s16[1]), _mm512_add_epi16(s16[2], s16[3])), ones);
        const __m512i offset = _mm512_set1_epi32(8 * p.act_sums[t * p.act_sums_stride + i]);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(sums, offset)),
                                 _mm512_mul_ps(dw, _mm512_set1_ps(h2f(a.d))), acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) _mm512_storeu_ps(p.y + t * p.y_stride, acc[t]);
  }
};

// The same with VNNI: each token's block sum is eight vpdpbusd in two chains, the first starting at
// -8 x the activation block's sum (the same exact integer as the maddubs tree).
struct TileQ4_0x16Vnni {
  static constexpr int kToks = 4;
  static constexpr bool kOneToken = false;
  template <int T>
  CHASSIS_VNNI static void tile(const TileProblem& p) {
    const auto* w0 = reinterpret_cast<const BlockQ4_0x8*>(p.w);
    const auto* w1 = reinterpret_cast<const BlockQ4_0x8*>(p.w + p.w_stride);
    __m512 acc[T];
    for (auto& a : acc) a = _mm512_setzero_ps();
    const int64_t nb = p.n / QK;
    for (int64_t i = 0; i < nb; ++i) {
      __m512i lo[4], hi[4];
      const __m512 dw = q4_0_pair_block(p, w0[i], w1[i], i, lo, hi);
      for (int t = 0; t < T; ++t) {
        const BlockQ8_0& a = act_block(p, t, i);
        __m512i s_lo = _mm512_set1_epi32(-8 * p.act_sums[t * p.act_sums_stride + i]), s_hi = _mm512_setzero_si512();
        for (int k = 0; k < 4; ++k) {
          s_lo = _mm512_dpbusd_epi32(s_lo, lo[k], broadcast_lane512(a.qs + 4 * k));
          s_hi = _mm512_dpbusd_epi32(s_hi, hi[k], broadcast_lane512(a.qs + 16 + 4 * k));
        }
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s_lo, s_hi)),
                                 _mm512_mul_ps(dw, _mm512_set1_ps(h2f(a.d))), acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) _mm512_storeu_ps(p.y + t * p.y_stride, acc[t]);
  }
};

// ---- Q5_0 (reference: eight lanes of 4-element integer sums per block, lane l's acc = fma(d_w*d_a,
// sum, acc) in block order, hsum8 at the end). Lane l of a row is elements 4l..4l+3: low nibbles of
// qs bytes 4l.. for l < 4, high nibbles of bytes 4(l-4).. for l >= 4, so qs[k] gives lanes k and k+4.
// Here acc[l] holds lane l of all eight rows, and hsum8's tree runs across the eight vectors.
// Quants are read unsigned (0..31); the offset of 16 returns through the activation's lane sums
// (each lane's sum starts at -16 x the activation lane's sum).

struct TileQ5_0x8 {
  // Decode: one token, the quants unpacked as they stream in by LANES, each lane by LANE_FMA (the same
  // body for four targets).
#define CHASSIS_Q5_GROUP_STREAMING(NAME, TARGET, LANE_FMA, LANES) \
  TARGET static void NAME(const TileProblem& p, int t) { \
    const auto* w = reinterpret_cast<const BlockQ5_0x8*>(p.w); \
    __m256 acc[8]; \
    for (auto& a : acc) a = _mm256_setzero_ps(); \
    const int64_t nb = p.n / QK; \
    const int32_t* starts = p.act_sums + t * p.act_sums_stride; \
    for (int64_t i = 0; i < nb; ++i) { \
      prefetch_ahead(p.w, i * int64_t(sizeof(BlockQ5_0x8)), int64_t(sizeof(BlockQ5_0x8))); \
      const BlockQ8_0& a = act_block(p, t, i); \
      const __m256 d = row_times_act_scales(w[i].d, a); \
      const __m256i qh = load256(w[i].qh); \
      const int32_t* start = starts + 8 * i; \
      __m256i low, high; \
      LANES<0>(w[i], qh, low, high); \
      acc[0] = LANE_FMA(low, a.qs + 0, start[0], d, acc[0]); \
      acc[4] = LANE_FMA(high, a.qs + 16, start[4], d, acc[4]); \
      LANES<1>(w[i], qh, low, high); \
      acc[1] = LANE_FMA(low, a.qs + 4, start[1], d, acc[1]); \
      acc[5] = LANE_FMA(high, a.qs + 20, start[5], d, acc[5]); \
      LANES<2>(w[i], qh, low, high); \
      acc[2] = LANE_FMA(low, a.qs + 8, start[2], d, acc[2]); \
      acc[6] = LANE_FMA(high, a.qs + 24, start[6], d, acc[6]); \
      LANES<3>(w[i], qh, low, high); \
      acc[3] = LANE_FMA(low, a.qs + 12, start[3], d, acc[3]); \
      acc[7] = LANE_FMA(high, a.qs + 28, start[7], d, acc[7]); \
    } \
    _mm256_storeu_ps(p.y + t * p.y_stride, hsum8_across(acc)); \
  }
  CHASSIS_Q5_GROUP_STREAMING(one_token, CHASSIS_AVX2, q5_lane_fma, q5_lanes)
  CHASSIS_Q5_GROUP_STREAMING(one_token_vnni, CHASSIS_VNNI, q5_lane_fma_vnni256, q5_lanes)
  CHASSIS_Q5_GROUP_STREAMING(one_token_vnni_gfni, CHASSIS_VNNI_GFNI, q5_lane_fma_vnni256, q5_lanes_gfni)
  CHASSIS_Q5_GROUP_STREAMING(one_token_avx_vnni, CHASSIS_AVX_VNNI, q5_lane_fma_avx_vnni, q5_lanes)
#undef CHASSIS_Q5_GROUP_STREAMING

  // Prefill: the group's quants unpacked once (unpack_group), then every token streams
  // over them (eight accumulators per token leave no registers for a second token).
#define CHASSIS_Q5_GROUP_TOKEN(NAME, TARGET, LANE_FMA) \
  TARGET static void NAME(const TileProblem& p, const Q5Unpacked* unpacked, int t) { \
    const auto* w = reinterpret_cast<const BlockQ5_0x8*>(p.w); \
    __m256 acc[8]; \
    for (auto& a : acc) a = _mm256_setzero_ps(); \
    const int64_t nb = p.n / QK; \
    const int32_t* starts = p.act_sums + t * p.act_sums_stride; \
    for (int64_t i = 0; i < nb; ++i) { \
      const BlockQ8_0& a = act_block(p, t, i); \
      const __m256 d = row_times_act_scales(w[i].d, a); \
      const int32_t* start = starts + 8 * i; \
      for (int l = 0; l < 8; ++l) acc[l] = LANE_FMA(load256(unpacked[i].lane[l]), a.qs + 4 * l, start[l], d, acc[l]); \
    } \
    _mm256_storeu_ps(p.y + t * p.y_stride, hsum8_across(acc)); \
  }
  CHASSIS_Q5_GROUP_TOKEN(one_token_unpacked, CHASSIS_AVX2, q5_lane_fma)
  CHASSIS_Q5_GROUP_TOKEN(one_token_unpacked_vnni, CHASSIS_VNNI, q5_lane_fma_vnni256)
  CHASSIS_Q5_GROUP_TOKEN(one_token_unpacked_avx_vnni, CHASSIS_AVX_VNNI, q5_lane_fma_avx_vnni)
#undef CHASSIS_Q5_GROUP_TOKEN
};

// q5_lanes<K> on both groups of a pair at once (qh: the first group's, then the second's).
template <int K>
CHASSIS_AVX512 inline void q5_pair_lanes(const BlockQ5_0x8& b0, const BlockQ5_0x8& b1, __m512i qh, __m512i& low, __m512i& high) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
  const __m512i raw = _mm512_inserti64x4(_mm512_castsi256_si512(load256(b0.qs[K])), load256(b1.qs[K]), 1);
  low = _mm512_or_si512(_mm512_and_si512(raw, low4), _mm512_and_si512(_mm512_slli_epi16(qh, 4 - K), bit4));
  high = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(raw, 4), low4), _mm512_and_si512(_mm512_srli_epi16(qh, K), bit4));
}

// Two adjacent groups (16 rows) in 512-bit registers. Prefill: the pair's quants unpacked once
// (lane l: the first group's 32 bytes, then the second's), then each token as TileQ5_0x8 does it.
// Decode without VNNI: unpacked as they stream in, each half doing TileQ5_0x8::one_token's operations.
struct TileQ5_0x16 {
  // Decode without VNNI: one token over the pair, the quants unpacked as they stream in (as
  // TileQ5_0x8::one_token, each half doing its group's 256-bit operations).
  CHASSIS_AVX512 static void one_token_streaming(const TileProblem& p, int t) {
    const auto* w0 = reinterpret_cast<const BlockQ5_0x8*>(p.w);
    const auto* w1 = reinterpret_cast<const BlockQ5_0x8*>(p.w + p.w_stride);
    __m512 acc[8];
    for (auto& a : acc) a = _mm512_setzero_ps();
    const int64_t nb = p.n / QK;
    const int32_t* starts = p.act_sums + t * p.act_sums_stride;
    for (int64_t i = 0; i < nb; ++i) {
      prefetch_ahead(p.w, i * int64_t(sizeof(BlockQ5_0x8)), int64_t(sizeof(BlockQ5_0x8)));
      prefetch_ahead(p.w + p.w_stride, i * int64_t(sizeof(BlockQ5_0x8)), int64_t(sizeof(BlockQ5_0x8)));
      const BlockQ8_0& a = act_block(p, t, i);
      const __m512 d = pair_times_act_scales(w0[i].d, w1[i].d, a);
      const __m512i qh = _mm512_inserti64x4(_mm512_castsi256_si512(load256(w0[i].qh)), load256(w1[i].qh), 1);
      const int32_t* start = starts + 8 * i;
      __m512i low, high;
      q5_pair_lanes<0>(w0[i], w1[i], qh, low, high);
      acc[0] = q5_lane_fma512(low, a.qs + 0, start[0], d, acc[0]);
      acc[4] = q5_lane_fma512(high, a.qs + 16, start[4], d, acc[4]);
      q5_pair_lanes<1>(w0[i], w1[i], qh, low, high);
      acc[1] = q5_lane_fma512(low, a.qs + 4, start[1], d, acc[1]);
      acc[5] = q5_lane_fma512(high, a.qs + 20, start[5], d, acc[5]);
      q5_pair_lanes<2>(w0[i], w1[i], qh, low, high);
      acc[2] = q5_lane_fma512(low, a.qs + 8, start[2], d, acc[2]);
      acc[6] = q5_lane_fma512(high, a.qs + 24, start[6], d, acc[6]);
      q5_pair_lanes<3>(w0[i], w1[i], qh, low, high);
      acc[3] = q5_lane_fma512(low, a.qs + 12, start[3], d, acc[3]);
      acc[7] = q5_lane_fma512(high, a.qs + 28, start[7], d, acc[7]);
    }
    _mm512_storeu_ps(p.y + t * p.y_stride, hsum8_across512(acc));
  }

  // Prefill: one token over the pair's unpacked quants, each lane by LANE_FMA (the same body for
  // two targets: a target attribute cannot be a template parameter).
#define CHASSIS_Q5_PAIR_TOKEN(NAME, TARGET, LANE_FMA) \
  TARGET static void NAME(const TileProblem& p, const Q5UnpackedPair* unpacked, int t) { \
    const auto* w0 = reinterpret_cast<const BlockQ5_0x8*>(p.w); \
    const auto* w1 = reinterpret_cast<const BlockQ5_0x8*>(p.w + p.w_stride); \
    __m512 acc[8]; \
    for (auto& a : acc) a = _mm512_setzero_ps(); \
    const int64_t nb = p.n / QK; \
    const int32_t* starts = p.act_sums + t * p.act_sums_stride; \
    for (int64_t i = 0; i < nb; ++i) { \
      const BlockQ8_0& a = act_block(p, t, i); \
      const __m512 d = pair_times_act_scales(w0[i].d, w1[i].d, a); \
      for (int l = 0; l < 8; ++l) \
        acc[l] = LANE_FMA(_mm512_load_si512(unpacked[i].lane[l]), a.qs + 4 * l, starts[8 * i + l], d, acc[l]); \
    } \
    _mm512_storeu_ps(p.y + t * p.y_stride, hsum8_across512(acc)); \
  }
  CHASSIS_Q5_PAIR_TOKEN(one_token, CHASSIS_AVX512, q5_lane_fma512)
  CHASSIS_Q5_PAIR_TOKEN(one_token_vnni, CHASSIS_VNNI, q5_lane_fma_vnni)
#undef CHASSIS_Q5_PAIR_TOKEN
};

// ---- Q8_0 (reference: as Q5_0, eight lanes with one FMA each per block, hsum8 at the end).
// Several tokens simply pass over the group again (it stays in L1/L2; there is nothing to unpack).
// One lane of the eight rows' integer sums: the sign trick's maddubs + madd, or (VNNI) one vpdpbusd
// over the quants with 128 added, starting at -128 x the activation lane's sum (the same integer).
CHASSIS_AVX2 inline __m256i q8_lane_sums(__m256i x, const int8_t* y, const int32_t*, int64_t) {
  const __m256i dot = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(broadcast_lane(y), x));
  return _mm256_madd_epi16(dot, _mm256_set1_epi16(1));
}
#define CHASSIS_Q8_LANE_SUMS_VNNI(NAME, TARGET, DPBUSD) \
  TARGET inline __m256i NAME(__m256i x, const int8_t* y, const int32_t* starts, int64_t k) { \
    return DPBUSD(_mm256_set1_epi32(starts[k]), _mm256_xor_si256(x, _mm256_set1_epi8(int8_t(0x80))), broadcast_lane(y)); \
  }
CHASSIS_Q8_LANE_SUMS_VNNI(q8_lane_sums_vnni, CHASSIS_VNNI, _mm256_dpbusd_epi32)
CHASSIS_Q8_LANE_SUMS_VNNI(q8_lane_sums_avx_vnni, CHASSIS_AVX_VNNI, _mm256_dpbusd_avx_epi32)
#undef CHASSIS_Q8_LANE_SUMS_VNNI
struct TileQ8_0x8 {
  // One token over a group, each lane's sums by LANE (the same body for three targets).
#define CHASSIS_Q8_GROUP_TOKEN(NAME, TARGET, LANE) \
  TARGET static void NAME(const TileProblem& p, int t) { \
    const auto* w = reinterpret_cast<const BlockQ8_0x8*>(p.w); \
    __m256 acc[8]; \
    for (auto& a : acc) a = _mm256_setzero_ps(); \
    const int64_t nb = p.n / QK; \
    const int32_t* starts = p.act_sums ? p.act_sums + t * p.act_sums_stride : nullptr; /* VNNI only */ \
    for (int64_t i = 0; i < nb; ++i) { \
      prefetch_ahead(p.w, i * int64_t(sizeof(BlockQ8_0x8)), int64_t(sizeof(BlockQ8_0x8))); \
      const BlockQ8_0& a = act_block(p, t, i); \
      const __m256 d = row_times_act_scales(w[i].d, a); \
      for (int l = 0; l < 8; ++l) { \
        const __m256i sums = LANE(load256(w[i].qs[l]), a.qs + 4 * l, starts, 8 * i + l); \
        acc[l] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc[l]); \
      } \
    } \
    _mm256_storeu_ps(p.y + t * p.y_stride, hsum8_across(acc)); \
  }
  CHASSIS_Q8_GROUP_TOKEN(one_token, CHASSIS_AVX2, q8_lane_sums)
  CHASSIS_Q8_GROUP_TOKEN(one_token_vnni, CHASSIS_VNNI, q8_lane_sums_vnni)
  CHASSIS_Q8_GROUP_TOKEN(one_token_avx_vnni, CHASSIS_AVX_VNNI, q8_lane_sums_avx_vnni)
#undef CHASSIS_Q8_GROUP_TOKEN

  // One token over kGroups groups of wide rows, their blocks in chunks of kChunkBlocks: the chunk
  // of every group, then the next chunk. Each group's accumulators carry over from chunk to chunk,
  // so every lane still sums its blocks in order (bit-identical to one_token_vnni).
  // Why: a token's activation blocks and lane start sums (66 bytes a block) stay in L1 only while
  // less than ~25 KiB of weights stream between two reads of a block (under streaming this core's
  // 48 KiB L1 keeps about that). One group of a 4864- or 8192-wide row is 41 or 70 KiB, so group
  // by group every activation read missed L1, and such rows streamed 20 % slower than 896-wide ones
  // (one core, 20 vs 25 GB/s; a probe with the activation reads confined to 28 blocks ran the wide
  // rows at the narrow rows' speed). Chunked, through matmul with two threads: 4864-wide +4-7 %,
  // 8192-wide +9-13 %; Llama-3.2-1B Q8_0 decode (--ab) 1.005, 1.005, 1.037, 1.038.
  static constexpr int kGroups = 2;  // (PiecePrefetch assumes two)
  static constexpr int64_t kChunkBlocks = 32;  // 16 as fast, 64 slower (two threads, 8192-wide)
  CHASSIS_VNNI static void groups_chunked_vnni(const TileProblem& p) {
    const int64_t nb = p.n / QK, step = int64_t(sizeof(BlockQ8_0x8));
    alignas(32) float carried[kGroups][8][8] = {};
    for (int64_t c = 0; c < nb; c += kChunkBlocks) {
      const int64_t end = std::min(nb, c + kChunkBlocks);
      for (int g = 0; g < kGroups; ++g) {
        const auto* w = reinterpret_cast<const BlockQ8_0x8*>(p.w + g * p.w_stride);
        const PiecePrefetch prefetch(p, g, c, end, nb, step);
        __m256 acc[8];
        for (int l = 0; l < 8; ++l) acc[l] = _mm256_load_ps(carried[g][l]);
        for (int64_t i = c; i < end; ++i) {
          prefetch(i - c, step);
          const BlockQ8_0& a = act_block(p, 0, i);
          const __m256 d = row_times_act_scales(w[i].d, a);
          for (int l = 0; l < 8; ++l) {
            const __m256i sums = q8_lane_sums_vnni(load256(w[i].qs[l]), a.qs + 4 * l, p.act_sums, 8 * i + l);
            acc[l] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc[l]);
          }
        }
        for (int l = 0; l < 8; ++l) _mm256_store_ps(carried[g][l], acc[l]);
      }
    }
    for (int g = 0; g < kGroups; ++g) {
      __m256 acc[8];
      for (int l = 0; l < 8; ++l) acc[l] = _mm256_load_ps(carried[g][l]);
      _mm256_storeu_ps(p.y + g * kInterleavedRows, hsum8_across(acc));
    }
  }
};
// Rows at least this wide (in blocks) go through TileQ8_0x8::groups_chunked_vnni for one token.
constexpr int64_t kQ8ChunkedMinBlocks = 96;

// Prefill with 512-bit registers over two adjacent groups (16 rows). AVX-512 has no vpsignb: the
// quants' magnitudes and sign masks are staged once per pair, and each token's activation is negated
// under the mask (the sign trick's two operands, exactly).
struct alignas(64) Q8StagedPair {
  uint8_t magnitude[8][64];
  uint64_t negative[8];
};
struct TileQ8_0x16 {
  CHASSIS_AVX512 static void stage_pair(const TileProblem& p, Q8StagedPair* staged) {
    const auto* w0 = reinterpret_cast<const BlockQ8_0x8*>(p.w);
    const auto* w1 = reinterpret_cast<const BlockQ8_0x8*>(p.w + p.w_stride);
    const int64_t nb = p.n / QK;
    for (int64_t i = 0; i < nb; ++i)
      for (int l = 0; l < 8; ++l) {
        const __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(load256(w0[i].qs[l])), load256(w1[i].qs[l]), 1);
        _mm512_storeu_si512(staged[i].magnitude[l], _mm512_abs_epi8(x));
        staged[i].negative[l] = _mm512_movepi8_mask(x);
      }
  }
  CHASSIS_AVX512 static void one_token(const TileProblem& p, const Q8StagedPair* staged, int t) {
    const auto* w0 = reinterpret_cast<const BlockQ8_0x8*>(p.w);
    const auto* w1 = reinterpret_cast<const BlockQ8_0x8*>(p.w + p.w_stride);
    __m512 acc[8];
    for (auto& a : acc) a = _mm512_setzero_ps();
    const __m512i ones = _mm512_set1_epi16(1), zero = _mm512_setzero_si512();
    const int64_t nb = p.n / QK;
    for (int64_t i = 0; i < nb; ++i) {
      const BlockQ8_0& a = act_block(p, t, i);
      const __m512 d = pair_times_act_scales(w0[i].d, w1[i].d, a);
      for (int l = 0; l < 8; ++l) {
        const __m512i y = broadcast_lane512(a.qs + 4 * l);
        const __m512i signed_y = _mm512_mask_sub_epi8(y, staged[i].negative[l], zero, y);
        const __m512i dot = _mm512_maddubs_epi16(_mm512_loadu_si512(staged[i].magnitude[l]), signed_y);
        acc[l] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(_mm512_madd_epi16(dot, ones)), acc[l]);
      }
    }
    _mm512_storeu_ps(p.y + t * p.y_stride, hsum8_across512(acc));
  }
};

// The same with VNNI: the quants are staged with 128 added (unsigned, as vpdpbusd wants them), and
// each lane's int32 sum starts at -128 x the activation lane's sum (ActSums::kLanesTimesMinus128), so
// one vpdpbusd leaves exactly the integer the sign trick's maddubs + madd gives.
struct alignas(64) Q8BiasedPair {
  uint8_t biased[8][64];
};
struct TileQ8_0x16Vnni {
  CHASSIS_VNNI static void stage_pair(const TileProblem& p, Q8BiasedPair* staged) {
    const auto* w0 = reinterpret_cast<const BlockQ8_0x8*>(p.w);
    const auto* w1 = reinterpret_cast<const BlockQ8_0x8*>(p.w + p.w_stride);
    const __m512i bias = _mm512_set1_epi8(int8_t(0x80));
    const int64_t nb = p.n / QK;
    for (int64_t i = 0; i < nb; ++i)
      for (int l = 0; l < 8; ++l) {
        const __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(load256(w0[i].qs[l])), load256(w1[i].qs[l]), 1);
        _mm512_store_si512(staged[i].biased[l], _mm512_xor_si512(x, bias));
      }
  }
  CHASSIS_VNNI static void one_token(const TileProblem& p, const Q8BiasedPair* staged, int t) {
    const auto* w0 = reinterpret_cast<const BlockQ8_0x8*>(p.w);
    const auto* w1 = reinterpret_cast<const BlockQ8_0x8*>(p.w + p.w_stride);
    __m512 acc[8];
    for (auto& a : acc) a = _mm512_setzero_ps();
    const int64_t nb = p.n / QK;
    const int32_t* starts = p.act_sums + t * p.act_sums_stride;
    for (int64_t i = 0; i < nb; ++i) {
      const BlockQ8_0& a = act_block(p, t, i);
      const __m512 d = pair_times_act_scales(w0[i].d, w1[i].d, a);
      for (int l = 0; l < 8; ++l) {
        const __m512i sums = _mm512_dpbusd_epi32(_mm512_set1_epi32(starts[8 * i + l]), _mm512_load_si512(staged[i].biased[l]),
                                                 broadcast_lane512(a.qs + 4 * l));
        acc[l] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sums), acc[l]);
      }
    }
    _mm512_storeu_ps(p.y + t * p.y_stride, hsum8_across512(acc));
  }
};

}  // namespace

void matmul_interleaved_avx2(DType wt, const TileProblem& p) {
  if (wt == DType::Q4_0) {
    if (use_vnni_tiles() && p.n_tok == 1 && p.n / QK >= kQ4_0ChunkedMinBlocks) {
      const int64_t n_groups = p.n_rows / kInterleavedRows;
      int64_t k = 0;
      for (; k + 2 <= n_groups; k += 2) q4_0_groups_chunked_vnni(group_problem(p, k));
      if (k == n_groups) return;
      TileProblem rest = group_problem(p, k);
      rest.n_rows = p.n_rows - k * kInterleavedRows;
      return run_groups<TileQ4_0x16Vnni, TileQ4_0x8Vnni>(rest);
    }
    if (use_vnni_tiles()) return run_groups<TileQ4_0x16Vnni, TileQ4_0x8Vnni>(p);
    if (use_avx_vnni_tiles()) return run_groups<TileQ4_0x16, TileQ4_0x8AvxVnni>(p);
    return run_groups<TileQ4_0x16, TileQ4_0x8>(p);
  }
  if (wt == DType::Q4_K) return interleaved::matmul_interleaved_q4_k(p);
  if (wt == DType::Q5_K) return interleaved::matmul_interleaved_q5_k(p);
  if (wt == DType::Q4_1 || wt == DType::Q5_1) return interleaved::matmul_interleaved_q8_1(wt, p);
  // Q8_0 and Q5_0: one token at a time over a group (eight accumulators per token fill the
  // registers); for several tokens, pairs of groups through the 512-bit tiles with their quants
  // staged once per pair, then any group left through the 256-bit ones.
  const int64_t n_groups = p.n_rows / kInterleavedRows, nb = p.n / QK;
  const bool pairs = p.n_tok > 1 && use_avx512_tiles();
  int64_t k = 0;
  if (wt == DType::Q8_0) {
    if (pairs && use_vnni_tiles()) {
      thread_local std::vector<Q8BiasedPair> staged;
      if (staged.size() < size_t(nb)) staged.resize(size_t(nb));
      for (; k + 1 < n_groups; k += 2) {
        const TileProblem g = group_problem(p, k);
        TileQ8_0x16Vnni::stage_pair(g, staged.data());
        for (int t = 0; t < p.n_tok; ++t) TileQ8_0x16Vnni::one_token(g, staged.data(), t);
      }
    }
    if (pairs) {
      thread_local std::vector<Q8StagedPair> staged;
      if (staged.size() < size_t(nb)) staged.resize(size_t(nb));
      for (; k + 1 < n_groups; k += 2) {
        const TileProblem g = group_problem(p, k);
        TileQ8_0x16::stage_pair(g, staged.data());
        for (int t = 0; t < p.n_tok; ++t) TileQ8_0x16::one_token(g, staged.data(), t);
      }
    }
    if (p.n_tok == 1 && nb >= kQ8ChunkedMinBlocks && use_vnni_tiles())
      for (; k + TileQ8_0x8::kGroups <= n_groups; k += TileQ8_0x8::kGroups)
        TileQ8_0x8::groups_chunked_vnni(group_problem(p, k));
    for (; k < n_groups; ++k) {
      const TileProblem g = group_problem(p, k);
      for (int t = 0; t < p.n_tok; ++t) {
        if (use_vnni_tiles()) TileQ8_0x8::one_token_vnni(g, t);
        else if (use_avx_vnni_tiles()) TileQ8_0x8::one_token_avx_vnni(g, t);
        else TileQ8_0x8::one_token(g, t);
      }
    }
    return;
  }
  if (wt == DType::Q5_0) {
    // Decode without VNNI: pairs of groups streamed through 512-bit registers (Q5_0's unpacking is
    // the most work per byte of any type here: on a Skylake Xeon the 256-bit maddubs tile was
    // instruction-bound at ~6 GB/s per core). With VNNI the 256-bit tile is lean enough, and one
    // group at a time reads one linear stream instead of two side by side: on a Zen 5 EPYC it
    // streamed 16-45 % faster (one core 22 -> 27 GB/s on Qwen's 896-wide FFN, 18 -> 26 on 2048-wide).
    if (p.n_tok == 1 && use_avx512_tiles() && !use_vnni_tiles())
      for (; k + 1 < n_groups; k += 2) TileQ5_0x16::one_token_streaming(group_problem(p, k), 0);
    if (pairs)
      k = run_unpacked_pairs<BlockQ5_0x8>(p, k, use_vnni_tiles() ? TileQ5_0x16::one_token_vnni : TileQ5_0x16::one_token);
    thread_local std::vector<Q5Unpacked> unpacked;
    if (p.n_tok > 1 && unpacked.size() < size_t(nb)) unpacked.resize(size_t(nb));
    const bool vnni = use_vnni_tiles(), avx_vnni = use_avx_vnni_tiles(), gfni = use_gfni_tiles();
    for (; k < n_groups; ++k) {
      const TileProblem g = group_problem(p, k);
      if (p.n_tok == 1) {
        if (gfni) TileQ5_0x8::one_token_vnni_gfni(g, 0);
        else if (vnni) TileQ5_0x8::one_token_vnni(g, 0);
        else if (avx_vnni) TileQ5_0x8::one_token_avx_vnni(g, 0);
        else TileQ5_0x8::one_token(g, 0);
        continue;
      }
      unpack_group<BlockQ5_0x8>(g, unpacked.data());
      for (int t = 0; t < p.n_tok; ++t) {
        if (vnni) TileQ5_0x8::one_token_unpacked_vnni(g, unpacked.data(), t);
        else if (avx_vnni) TileQ5_0x8::one_token_unpacked_avx_vnni(g, unpacked.data(), t);
        else TileQ5_0x8::one_token_unpacked(g, unpacked.data(), t);
      }
    }
  }
}

}  // namespace chassis
