// AVX2 matmul tiles: R weight rows x T activation rows per call, each output element with exactly
// the float operations of its dot product in kernels/ref/dot.cc (see matmul_avx2.h).
//
// Why tiles: one dot product at a time is latency-bound (a single FMA chain per output, and the
// weight block's unpacking repeated for every activation row). A tile unpacks each weight block
// once for T tokens, reads each activation block once for R rows, and keeps R*T independent chains
// in flight. Where a reference reduces to one float per block (Q4_0, Q4_K), the R rows' chains sit
// in the lanes of one SSE register: lane r performs row r's scalar FMA, the same operation.
#include "kernels/cpu/avx512_util.h"  // first: see there

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/fp16.h"
#include "kernels/cpu/dot_avx2.h"
#include "kernels/cpu/matmul_avx2.h"
#include "kernels/cpu/row_tiles.h"

namespace chassis {
namespace {
using namespace avx2;
using namespace row_tiles;

// The four sums of v[0..3]'s eight int32 lanes, in lanes 0..3 (exact integer arithmetic).
CHASSIS_AVX2 inline __m128i hsum4_i32(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}
template <int R>
CHASSIS_AVX2 inline __m128i hsum_rows(const __m256i (&v)[R]) {
  const __m256i z = _mm256_setzero_si256();
  return hsum4_i32(v[0], R > 1 ? v[1 % R] : z, R > 2 ? v[2 % R] : z, R > 3 ? v[3 % R] : z);
}
// fp16 scales of R rows' block i, widened into lanes 0..R-1 (exact).
template <int R, typename B>
CHASSIS_AVX2 inline __m128 row_scales(const TileProblem& p, int64_t i, uint16_t B::*field) {
  // Built in a register: storing four halves to memory and loading them as one vector would stall
  // on store forwarding (measured: twice the time of the whole Q5_0 block).
  __m128i h = _mm_cvtsi32_si128(blocks<B>(p.w, p.w_stride, 0)[i].*field);
  if constexpr (R > 1) h = _mm_insert_epi16(h, blocks<B>(p.w, p.w_stride, 1 % R)[i].*field, 1);
  if constexpr (R > 2) h = _mm_insert_epi16(h, blocks<B>(p.w, p.w_stride, 2 % R)[i].*field, 2);
  if constexpr (R > 3) h = _mm_insert_epi16(h, blocks<B>(p.w, p.w_stride, 3 % R)[i].*field, 3);
  return _mm_cvtph_ps(h);
}
template <int R>
CHASSIS_AVX2 inline void store_rows(const TileProblem& p, int t, __m128 v) {
  alignas(16) float out[4];
  _mm_store_ps(out, v);
  for (int r = 0; r < R; ++r) p.y[t * p.y_stride + r] = out[r];
}

// Per-lane sums of 4 consecutive signed bytes of y, times `mul` (a power of two): the correction
// that turns an unsigned-times-signed byte dot into the dot with quants offset by -mul.
template <int kShift>
CHASSIS_AVX2 inline __m256i lane_sums_shifted(__m256i y) {
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), y);
  return _mm256_slli_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)), kShift);
}

// ---- Q8_0 and Q5_0 against Q8_0: 8 lanes of 4-byte integer sums, lane FMA with d_w*d_a per block.
// Q8_0 quants are signed (the sign trick feeds maddubs); Q5_0's are read unsigned (0..31) and the
// offset of 16 comes back through the activation's lane sums, which the tile's rows share.
struct TileQ8_0 {
  using Block = BlockQ8_0;
  static constexpr int kOffsetShift = -1;  // signed quants, no offset
  CHASSIS_AVX2 static __m256i quants(const Block& b) { return load256(b.qs); }
};
struct TileQ5_0 {
  using Block = BlockQ5_0;
  static constexpr int kOffsetShift = 4;  // stored value - 16
  CHASSIS_AVX2 static __m256i quants(const Block& b) { return _mm256_or_si256(nibbles(b.qs), fifth_bits(b.qh)); }
};
// With AVX-512BW/VL the 32 fifth bits are a mask register: one masked add instead of spreading the
// bits to bytes with a broadcast, a shuffle, two ands and a compare (Q5_0 is most of Qwen's Q4_K_M).
struct TileQ5_0Avx512 {
  using Block = BlockQ5_0;
  static constexpr int kOffsetShift = 4;
  CHASSIS_AVX512 static __m256i quants(const Block& b) {
    uint32_t bits;
    std::memcpy(&bits, b.qh, 4);
    const __m256i low = nibbles(b.qs);
    return _mm256_mask_add_epi8(low, __mmask32(bits), low, _mm256_set1_epi8(16));
  }
};

// The same tile body compiled for two targets (AVX2, and AVX2 + AVX-512BW/VL for quants() that use
// mask registers): a target attribute cannot be a template parameter.
#define CHASSIS_DEFINE_TILE_LANES(NAME, TARGET) \
template <class K> \
struct NAME { \
  static constexpr int kRows = 4, kToks = 3; \
  template <int R, int T> \
  TARGET static void tile(const TileProblem& p) { \
    using B = typename K::Block; \
    constexpr bool kSigned = K::kOffsetShift < 0; \
    __m256 acc[R][T]; \
    zero(acc); \
    const int64_t nb = p.n / QK; \
    for (int64_t i = 0; i < nb; ++i) { \
      prefetch_ahead(p.w, i * R * int64_t(sizeof(B)), R * int64_t(sizeof(B))); \
      for (int t = 0; t < T; ++t) \
        _mm_prefetch(reinterpret_cast<const char*>(blocks<BlockQ8_0>(p.act, p.act_stride, t) + i + 4), _MM_HINT_T0); \
      /* d_w * d_a for every (row, token): the rows' scales converted together, one multiply per token */ \
      const __m128 dw = row_scales<R, B>(p, i, &B::d); \
      __m256 d[T];  /* lanes 0..R-1 (and again 4..7): row r's product */ \
      __m256i correction[T]; \
      for (int t = 0; t < T; ++t) { \
        const BlockQ8_0& a = blocks<BlockQ8_0>(p.act, p.act_stride, t)[i]; \
        const __m128 dt = _mm_mul_ps(dw, _mm_set1_ps(h2f(a.d))); \
        d[t] = _mm256_set_m128(dt, dt); \
        if constexpr (!kSigned) correction[t] = lane_sums_shifted<(kSigned ? 0 : K::kOffsetShift)>(load256(a.qs)); \
      } \
      for (int r = 0; r < R; ++r) { \
        const B& w = blocks<B>(p.w, p.w_stride, r)[i]; \
        const __m256i x = K::quants(w); \
        const __m256i ax = kSigned ? _mm256_sign_epi8(x, x) : x; \
        for (int t = 0; t < T; ++t) { \
          const __m256i y = load256(blocks<BlockQ8_0>(p.act, p.act_stride, t)[i].qs); \
          __m256i lanes = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, kSigned ? _mm256_sign_epi8(y, x) : y), \
                                            _mm256_set1_epi16(1)); \
          if constexpr (!kSigned) lanes = _mm256_sub_epi32(lanes, correction[t]); \
          const __m256 drt = _mm256_permutevar_ps(d[t], _mm256_set1_epi32(r));  /* lane r everywhere */ \
          acc[r][t] = _mm256_fmadd_ps(drt, _mm256_cvtepi32_ps(lanes), acc[r][t]); \
        } \
      } \
    } \
    store_hsums(p, acc); \
  } \
};

CHASSIS_DEFINE_TILE_LANES(TileLanes, CHASSIS_AVX2)
CHASSIS_DEFINE_TILE_LANES(TileLanesAvx512, CHASSIS_AVX512)
#undef CHASSIS_DEFINE_TILE_LANES

// ---- Q4_0 (repacked reference): one exact integer sum per block, a scalar FMA per block in order.
// Quants are read unsigned (0..15); the offset of 8 comes back through the activation block's sum.
// Two rows share a register: row r's 16 packed bytes in the low half, row r+1's in the high half,
// so one shift and two masks unpack both, and the activation's two halves are broadcast to meet
// them (lanes 0..3 of a pair's sums are row r's, lanes 4..7 row r+1's).
struct TileQ4_0 {
  static constexpr int kRows = 4, kToks = 3;
  // [s0, s1, s2, s3]: the block sums of rows 0..3 from the pairs (0,1) and (2,3) (exact).
  CHASSIS_AVX2 static __m128i pair_sums(__m256i p01, __m256i p23) {
    const __m256i h = _mm256_hadd_epi32(p01, p23);  // [r0 r0 r2 r2 | r1 r1 r3 r3] partial sums
    const __m256i h2 = _mm256_hadd_epi32(h, h);    // [r0 r2 r0 r2 | r1 r3 r1 r3]
    return _mm_unpacklo_epi32(_mm256_castsi256_si128(h2), _mm256_extracti128_si256(h2, 1));
  }
  template <int R, int T>
  CHASSIS_AVX2 static void tile(const TileProblem& p) {
    constexpr int P = (R + 1) / 2;
    __m128 acc[T];  // lane r: row r's running sum
    for (auto& a : acc) a = _mm_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const int64_t nb = p.n / QK;
    for (int64_t i = 0; i < nb; ++i) {
      prefetch_ahead(p.w, i * R * int64_t(sizeof(BlockQ4_0)), R * int64_t(sizeof(BlockQ4_0)));
      __m256i lo[P], hi[P];  // elements 0..15 / 16..31 of rows 2k (low half) and 2k+1 (high half)
      for (int k = 0; k < P; ++k) {
        const uint8_t* a = blocks<BlockQ4_0>(p.w, p.w_stride, 2 * k)[i].qs;
        const uint8_t* b = blocks<BlockQ4_0>(p.w, p.w_stride, std::min(2 * k + 1, R - 1))[i].qs;
        const __m256i raw = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(b), reinterpret_cast<const __m128i*>(a));
        lo[k] = _mm256_and_si256(raw, low4);
        hi[k] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
      }
      const __m128 dw = row_scales<R, BlockQ4_0>(p, i, &BlockQ4_0::d);
      for (int t = 0; t < T; ++t) {
        const BlockQ8_0& a = blocks<BlockQ8_0>(p.act, p.act_stride, t)[i];
        const __m256i y_lo = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.qs)));
        const __m256i y_hi = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.qs + 16)));
        __m256i pairs[P];
        for (int k = 0; k < P; ++k)  // |15 * 128 * 2| * 2 < 2^15: the int16 sums cannot overflow
          pairs[k] = _mm256_madd_epi16(
              _mm256_add_epi16(_mm256_maddubs_epi16(lo[k], y_lo), _mm256_maddubs_epi16(hi[k], y_hi)), ones);
        const __m128i sums = pair_sums(pairs[0], pairs[P > 1 ? 1 : 0]);
        const __m128i offset = _mm_set1_epi32(8 * p.act_sums[t * p.act_sums_stride + i]);
        const __m128 s = _mm_cvtepi32_ps(_mm_sub_epi32(sums, offset));
        acc[t] = _mm_fmadd_ps(s, _mm_mul_ps(dw, _mm_set1_ps(h2f(a.d))), acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) store_rows<R>(p, t, acc[t]);
  }
};

// Q4_K's 12 scale bytes unpacked at once: the 8 six-bit scales in bytes 0..7, the 8 mins in 8..15
// (the same values k4_scale_min gives one at a time).
CHASSIS_AVX2 inline __m128i q4k_scales_mins(const uint8_t* packed) {
  uint32_t u[4];
  std::memcpy(u, packed, 12);
  constexpr uint32_t k6 = 0x3f3f3f3f, k4 = 0x0f0f0f0f, k2 = 0x03030303;
  u[3] = ((u[2] >> 4) & k4) | (((u[1] >> 6) & k2) << 4);
  const uint32_t mins_0_3 = u[1] & k6;
  u[1] = (u[2] & k4) | (((u[0] >> 6) & k2) << 4);
  u[2] = mins_0_3;
  u[0] &= k6;
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(u));
}
// Lane j of each of v[0..R) gathered into lanes 0..R-1: column j of a 4x4 int32 matrix.
template <int R>
CHASSIS_AVX2 inline __m128i column(const __m128i (&v)[R], int j) {
  const __m128i z = _mm_setzero_si128();
  const __m128i a = v[0], b = R > 1 ? v[1 % R] : z, c = R > 2 ? v[2 % R] : z, d = R > 3 ? v[3 % R] : z;
  const __m128i ab = j < 2 ? _mm_unpacklo_epi32(a, b) : _mm_unpackhi_epi32(a, b);
  const __m128i cd = j < 2 ? _mm_unpacklo_epi32(c, d) : _mm_unpackhi_epi32(c, d);
  return j % 2 == 0 ? _mm_unpacklo_epi64(ab, cd) : _mm_unpackhi_epi64(ab, cd);
}

// ---- Q4_K (repacked reference): isum = sum over sub-blocks of scale * (integer dot), flushed with
// one scalar FMA per super-block (single row) or per 64 elements (the batched GEMM); the minimum
// term likewise through the activation's 16-element sums.
struct TileQ4_K {
  static constexpr int kRows = 4, kToks = 2;
  template <int R, int T>
  CHASSIS_AVX2 static void tile(const TileProblem& p) {
    const bool gemm = p.variant.repack_gemm;
    __m128 acc[T], acc_min[T];
    for (int t = 0; t < T; ++t) acc[t] = acc_min[t] = _mm_setzero_ps();
    const int64_t nb = p.n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < nb; ++i) {
      prefetch_ahead(p.w, i * R * int64_t(sizeof(BlockQ4_K)), R * int64_t(sizeof(BlockQ4_K)));
      __m256i scales[R];  // the 8 scales as int16, in both 128-bit halves
      __m128i mins[R];    // the 8 mins as int16
      for (int r = 0; r < R; ++r) {
        const __m128i sm = q4k_scales_mins(blocks<BlockQ4_K>(p.w, p.w_stride, r)[i].scales);
        scales[r] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        mins[r] = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
      }
      const __m128 dw = row_scales<R, BlockQ4_K>(p, i, &BlockQ4_K::d);
      const __m128 mw = row_scales<R, BlockQ4_K>(p, i, &BlockQ4_K::dmin);
      for (int t = 0; t < T; ++t) {
        const BlockQ8_K& a = blocks<BlockQ8_K>(p.act, p.act_stride, t)[i];
        const __m128 d = _mm_mul_ps(dw, _mm_set1_ps(a.d));
        const __m128 dmin = _mm_mul_ps(mw, _mm_set1_ps(a.d));
        // the activation's sum over each 32-element sub-block (int16: at most 32 * 127)
        const __m128i sub_sums = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums)),
                                                _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums + 8)));
        __m128i imin[R];  // lane j: the minimum term of sub-blocks 2j and 2j+1
        for (int r = 0; r < R; ++r) imin[r] = _mm_madd_epi16(mins[r], sub_sums);
        __m256i isum[R];
        for (int r = 0; r < R; ++r) isum[r] = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {  // 64 elements: low nibbles are sub-block 2j, high nibbles 2j+1
          const __m256i y0 = load256(a.qs + 64 * j), y1 = load256(a.qs + 64 * j + 32);
          const __m256i pick_lo = _mm256_set1_epi16(int16_t(0x0100 + 0x0202 * (2 * j)));
          const __m256i pick_hi = _mm256_set1_epi16(int16_t(0x0100 + 0x0202 * (2 * j + 1)));
          for (int r = 0; r < R; ++r) {
            const __m256i raw = load256(blocks<BlockQ4_K>(p.w, p.w_stride, r)[i].qs + 32 * j);
            const __m256i lo = _mm256_maddubs_epi16(_mm256_and_si256(raw, m4), y0);
            const __m256i hi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(raw, 4), m4), y1);
            isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(lo, _mm256_shuffle_epi8(scales[r], pick_lo)));
            isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(hi, _mm256_shuffle_epi8(scales[r], pick_hi)));
          }
          if (gemm) {
            acc[t] = _mm_fmadd_ps(_mm_cvtepi32_ps(hsum_rows<R>(isum)), d, acc[t]);
            acc_min[t] = _mm_fmadd_ps(_mm_cvtepi32_ps(column<R>(imin, j)), dmin, acc_min[t]);
            for (int r = 0; r < R; ++r) isum[r] = _mm256_setzero_si256();
          }
        }
        if (!gemm) {
          const __m128i z = _mm_setzero_si128();
          const __m128i m01 = _mm_hadd_epi32(imin[0], R > 1 ? imin[1 % R] : z);
          const __m128i m23 = _mm_hadd_epi32(R > 2 ? imin[2 % R] : z, R > 3 ? imin[3 % R] : z);
          acc[t] = _mm_fmadd_ps(_mm_cvtepi32_ps(hsum_rows<R>(isum)), d, acc[t]);
          acc_min[t] = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_hadd_epi32(m01, m23)), dmin, acc_min[t]);
        }
      }
    }
    for (int t = 0; t < T; ++t) store_rows<R>(p, t, _mm_sub_ps(acc[t], acc_min[t]));
  }
};

// ---- F16 weights against f16-rounded activations (widened to f32: the same values).
// Batched (tinyBLAS): one 8-lane accumulator per output over steps of 8, hsum8.
// (BF16 the same: its batched reference is the same tinyBLAS loop, each weight widened exactly.)
template <typename Half>  // uint16_t (F16) or Bf16
struct TileHalfBatch {
  static constexpr int kRows = 3, kToks = 4;
  template <int R, int T>
  CHASSIS_AVX2 static void tile(const TileProblem& p) {
    __m256 acc[R][T];
    zero(acc);
    for (int64_t i = 0; i < p.n; i += 8) {
      prefetch_ahead(p.w, i * R * 2, R * 16);
      __m256 x[R];
      for (int r = 0; r < R; ++r) x[r] = load8(blocks<Half>(p.w, p.w_stride, r) + i);
      for (int t = 0; t < T; ++t) {
        const __m256 y = _mm256_loadu_ps(blocks<float>(p.act, p.act_stride, t) + i);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(x[r], y, acc[r][t]);
      }
    }
    store_hsums(p, acc);
  }
};

// Single row (ggml_vec_dot_f16): four accumulators over steps of 32, (0+2)+(1+3), hadd_reduce8, and
// the elements past the last full step added in double.
struct TileF16Single {
  // One row at a time: the weights then stream as one linear run that the prefetch follows. Three
  // rows side by side (KiB-long rows read in parallel) left the later rows' lines cold: on the
  // EPYC one core streamed 18 GB/s instead of 29, and Llama-3.2-1B / Qwen2.5-0.5B F16 decode
  // went 13.5 -> 17.7 / 32.7 -> 42.8 tok/s with one row. (Sharing the activation loads across
  // rows only matters when the weights are cache-resident.)
  static constexpr int kRows = 1, kToks = 1;
  template <int R, int T>
  CHASSIS_AVX2 static void tile(const TileProblem& p) {
    static_assert(T == 1);
    __m256 acc[R][4];
    for (auto& row : acc)
      for (auto& a : row) a = _mm256_setzero_ps();
    const float* y = blocks<float>(p.act, p.act_stride, 0);
    const int64_t np = p.n & ~int64_t(31);
    for (int64_t i = 0; i < np; i += 32) {
      prefetch_ahead(p.w, i * R * 2, R * 64);
      __m256 yv[4];
      for (int j = 0; j < 4; ++j) yv[j] = _mm256_loadu_ps(y + i + 8 * j);
      for (int r = 0; r < R; ++r) {
        const uint16_t* w = blocks<uint16_t>(p.w, p.w_stride, r) + i;
        for (int j = 0; j < 4; ++j) acc[r][j] = _mm256_fmadd_ps(load8(w + 8 * j), yv[j], acc[r][j]);
      }
    }
    for (int r = 0; r < R; ++r) {
      const __m256 c = _mm256_add_ps(_mm256_add_ps(acc[r][0], acc[r][2]), _mm256_add_ps(acc[r][1], acc[r][3]));
      double sum = hadd_reduce8(c);
      const uint16_t* w = blocks<uint16_t>(p.w, p.w_stride, r);
      for (int64_t i = np; i < p.n; ++i) sum += double(h2f(w[i]) * y[i]);
      p.y[r] = float(sum);
    }
  }
};
using TileF16Batch = TileHalfBatch<uint16_t>;

// Single BF16 row (ggml_vec_dot_bf16, as dot_avx2's dot_bf16_single): four mul-then-add
// accumulators over steps of 32, (0+2)+(1+3), hsum8, the elements past the last full step added in
// double. One row at a time, as TileF16Single, with the activations widened from bf16 once per
// matmul instead of once per row.
struct TileBF16Single {
  static constexpr int kRows = 1, kToks = 1;
  template <int R, int T>
  CHASSIS_AVX2 static void tile(const TileProblem& p) {
    static_assert(R == 1 && T == 1);
    __m256 c[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const float* y = blocks<float>(p.act, p.act_stride, 0);
    const auto* w = reinterpret_cast<const Bf16*>(p.w);
    const int64_t np = p.n & ~int64_t(31);
    for (int64_t i = 0; i < np; i += 32) {
      prefetch_ahead(p.w, i * 2, 64);
      for (int j = 0; j < 4; ++j) c[j] = _mm256_add_ps(_mm256_mul_ps(load8(w + i + 8 * j), _mm256_loadu_ps(y + i + 8 * j)), c[j]);
    }
    double sum = hsum8(_mm256_add_ps(_mm256_add_ps(c[0], c[2]), _mm256_add_ps(c[1], c[3])));
    for (int64_t i = np; i < p.n; ++i) sum += double(bf16_to_f32(w[i].v) * y[i]);
    p.y[0] = float(sum);
  }
};

}  // namespace

namespace {
// CHASSIS_NO_AVX512 keeps to the 256-bit tiles, to measure what a CPU without AVX-512 gets.
std::atomic<bool> g_avx512_tiles{std::getenv("CHASSIS_NO_AVX512") == nullptr};
}  // namespace

bool use_avx512_tiles() { return cpu_has_avx512bw() && g_avx512_tiles.load(std::memory_order_relaxed); }
void set_avx512_tiles_enabled(bool on) { g_avx512_tiles.store(on); }

namespace {
std::atomic<bool> g_vnni_tiles{std::getenv("CHASSIS_NO_VNNI") == nullptr};
}  // namespace
bool use_vnni_tiles() { return use_avx512_tiles() && cpu_has_avx512vnni() && g_vnni_tiles.load(std::memory_order_relaxed); }
void set_vnni_tiles_enabled(bool on) { g_vnni_tiles.store(on); }
namespace {
std::atomic<bool> g_gfni_tiles{std::getenv("CHASSIS_NO_GFNI") == nullptr};
}  // namespace
bool use_gfni_tiles() { return use_vnni_tiles() && cpu_has_gfni() && g_gfni_tiles.load(std::memory_order_relaxed); }
void set_gfni_tiles_enabled(bool on) { g_gfni_tiles.store(on); }
bool use_avx_vnni_tiles() {
  return !use_avx512_tiles() && cpu_has_avx_vnni() && g_vnni_tiles.load(std::memory_order_relaxed);
}

bool has_tiled_avx2(DType wt) {
  switch (wt) {
    case DType::F16: case DType::BF16: case DType::Q8_0: case DType::Q5_0: case DType::Q4_0: case DType::Q4_K:
    case DType::Q6_K:
      return true;
    case DType::Q2_K: case DType::Q3_K:  // 512-bit tiles only; elsewhere one dot product at a time
      return use_avx512_tiles();
    default:
      return false;
  }
}

bool has_interleaved_tiles_avx2(DType wt) {
  return has_tiled_avx2(wt) || wt == DType::Q5_K || wt == DType::Q4_1 || wt == DType::Q5_1;
}

ActSums tiled_act_sums(DType wt, bool interleaved) {
  if (wt == DType::Q4_0) return ActSums::kBlock;
  if (wt == DType::Q5_0 && interleaved) return ActSums::kLanesTimesMinus16;
  if (wt == DType::Q8_0 && interleaved && (use_vnni_tiles() || use_avx_vnni_tiles())) return ActSums::kLanesTimesMinus128;
  return ActSums::kNone;
}

int64_t act_sums_per_block(ActSums kind) {
  switch (kind) {
    case ActSums::kNone: return 0;
    case ActSums::kBlock: return 1;
    case ActSums::kLanesTimesMinus16: case ActSums::kLanesTimesMinus128: return 8;
  }
  return 0;
}

CHASSIS_AVX2 void compute_act_sums(ActSums kind, const void* q8_0_blocks, int64_t nb, int32_t* sums) {
  const auto* b = static_cast<const BlockQ8_0*>(q8_0_blocks);
  if (kind == ActSums::kBlock)
    for (int64_t i = 0; i < nb; ++i) sums[i] = hsum_i32(lane_sums_shifted<0>(load256(b[i].qs)));
  else if (kind == ActSums::kLanesTimesMinus16 || kind == ActSums::kLanesTimesMinus128)
    for (int64_t i = 0; i < nb; ++i) {
      const __m256i lanes = kind == ActSums::kLanesTimesMinus16 ? lane_sums_shifted<4>(load256(b[i].qs))
                                                                : lane_sums_shifted<7>(load256(b[i].qs));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + 8 * i), _mm256_sub_epi32(_mm256_setzero_si256(), lanes));
    }
}

DType tiled_act_type(DType wt) {
  return wt == DType::F16 || wt == DType::BF16 ? DType::F32 : dtype_info(wt).vec_dot_type;
}

int64_t tiled_chunk_rows(DType wt, int64_t n_tok) {
  return (wt == DType::F16 || wt == DType::BF16) && n_tok > 1 && use_avx512_tiles() ? f16_batch_block_rows() : 16;
}

void matmul_tiles_avx2(DType wt, const TileProblem& p) {
  switch (wt) {
    case DType::F16:
      if (p.variant.tiny_blas && use_avx512_tiles()) matmul_f16_batch_avx512(wt, p);
      else if (p.variant.tiny_blas) run_tiles<TileF16Batch>(p);
      else run_tiles<TileF16Single>(p);
      return;
    case DType::BF16:
      if (p.variant.tiny_blas && use_avx512_tiles()) matmul_f16_batch_avx512(wt, p);
      else if (p.variant.tiny_blas) run_tiles<TileHalfBatch<Bf16>>(p);
      else run_tiles<TileBF16Single>(p);
      return;
    case DType::Q8_0: return run_tiles<TileLanes<TileQ8_0>>(p);
    case DType::Q5_0:
      if (use_avx512_tiles()) return run_tiles<TileLanesAvx512<TileQ5_0Avx512>>(p);
      return run_tiles<TileLanes<TileQ5_0>>(p);
    case DType::Q4_0: return run_tiles<TileQ4_0>(p);
    case DType::Q4_K: return run_tiles<TileQ4_K>(p);
    case DType::Q6_K: case DType::Q3_K: case DType::Q2_K: return matmul_k_rows_avx2(wt, p);
    default: return;
  }
}

}  // namespace chassis
