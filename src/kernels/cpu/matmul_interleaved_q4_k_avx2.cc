// Interleaved Q4_K tiles (see matmul_interleaved_avx2.cc for the layout): eight rows per 256-bit
// group, pairs of groups in 512-bit registers, with VNNI integer sums where the CPU has them.
#include "kernels/cpu/interleaved_tiles.h"  // first: it includes avx512_util.h first

namespace chassis::interleaved {
namespace {

// ---- Q4_K (reference: per super-block, isum = the sum over sub-blocks of scale * integer dot and
// imin = the sum of min * the activation's sub-block sum, each flushed with one FMA per super-block,
// or per 64 elements in the batched GEMM variant; y = acc - acc_min). Quants unsigned (0..15).
// The eight rows' integer work for sub-blocks 2q (low nibbles) and 2q + 1 (high nibbles) of
// super-block i: sums[t] (lane r: row r) += s_2q * dot_2q + s_2q+1 * dot_2q+1 for T tokens. With
// maddubs: eight int16 terms per row, each |x| <= 2 * 15 * 128 (their sum below 2^15), then one
// madd by the duplicated scales; with VNNI, each dot in int32 lanes by vpdpbusd, then times its
// scale (the same exact integers).
template <int T>
CHASSIS_AVX2 inline void q4_k_group_sums(const TileProblem& p, const BlockQ4_Kx8& b, int64_t i, int q, __m256i (&sums)[T]) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  // From lane r = int16 {s_2q, s_2q+1}: {s_2q, s_2q} and {s_2q+1, s_2q+1} (byte indices within each
  // 128-bit half, as vpshufb reads them).
  const __m256i dup_even = _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13));
  const __m256i dup_odd = _mm256_add_epi8(dup_even, _mm256_set1_epi8(2));
  const __m256i sc = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales[q])));
  __m256i s_lo[T], s_hi[T];
  for (int t = 0; t < T; ++t) s_lo[t] = s_hi[t] = _mm256_setzero_si256();
  for (int m = 0; m < 8; ++m) {
    const __m256i raw = load256(b.qs[8 * q + m]);
    const __m256i lo = _mm256_and_si256(raw, low4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
    for (int t = 0; t < T; ++t) {
      const int8_t* y = reinterpret_cast<const BlockQ8_K*>(p.act + t * p.act_stride)[i].qs + 64 * q + 4 * m;
      s_lo[t] = _mm256_add_epi16(s_lo[t], _mm256_maddubs_epi16(lo, broadcast_lane(y)));
      s_hi[t] = _mm256_add_epi16(s_hi[t], _mm256_maddubs_epi16(hi, broadcast_lane(y + 32)));
    }
  }
  const __m256i sc_even = _mm256_shuffle_epi8(sc, dup_even), sc_odd = _mm256_shuffle_epi8(sc, dup_odd);
  for (int t = 0; t < T; ++t)
    sums[t] = _mm256_add_epi32(sums[t], _mm256_add_epi32(_mm256_madd_epi16(s_lo[t], sc_even), _mm256_madd_epi16(s_hi[t], sc_odd)));
}
#define CHASSIS_Q4_K_GROUP_SUMS_VNNI(NAME, TARGET, DPBUSD) \
template <int T> \
TARGET inline void NAME(const TileProblem& p, const BlockQ4_Kx8& b, int64_t i, int q, __m256i (&sums)[T]) { \
  const __m256i low4 = _mm256_set1_epi8(0x0F); \
  const __m256i sc = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales[q]))); \
  const __m256i sc_even = _mm256_and_si256(sc, _mm256_set1_epi32(0xFFFF)), sc_odd = _mm256_srli_epi32(sc, 16); \
  __m256i s_lo[T], s_hi[T]; \
  for (int t = 0; t < T; ++t) s_lo[t] = s_hi[t] = _mm256_setzero_si256(); \
  for (int m = 0; m < 8; ++m) { \
    const __m256i raw = load256(b.qs[8 * q + m]); \
    const __m256i lo = _mm256_and_si256(raw, low4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4); \
    for (int t = 0; t < T; ++t) { \
      const int8_t* y = reinterpret_cast<const BlockQ8_K*>(p.act + t * p.act_stride)[i].qs + 64 * q + 4 * m; \
      s_lo[t] = DPBUSD(s_lo[t], lo, broadcast_lane(y)); \
      s_hi[t] = DPBUSD(s_hi[t], hi, broadcast_lane(y + 32)); \
    } \
  } \
  for (int t = 0; t < T; ++t) \
    sums[t] = _mm256_add_epi32(sums[t], _mm256_add_epi32(_mm256_mullo_epi32(s_lo[t], sc_even), _mm256_mullo_epi32(s_hi[t], sc_odd))); \
}
CHASSIS_Q4_K_GROUP_SUMS_VNNI(q4_k_group_sums_vnni, CHASSIS_VNNI, _mm256_dpbusd_epi32)
CHASSIS_Q4_K_GROUP_SUMS_VNNI(q4_k_group_sums_avx_vnni, CHASSIS_AVX_VNNI, _mm256_dpbusd_avx_epi32)
#undef CHASSIS_Q4_K_GROUP_SUMS_VNNI

// The tile for three targets, its integer sums by SUMS.
#define CHASSIS_DEFINE_Q4_K_GROUP_TILE(NAME, TARGET, SUMS) \
struct NAME { \
  static constexpr int kToks = 4; \
  template <int T> \
  TARGET static void tile(const TileProblem& p) { \
    const auto* w = reinterpret_cast<const BlockQ4_Kx8*>(p.w); \
    const bool gemm = p.variant.repack_gemm; \
    __m256 acc[T], acc_min[T]; \
    for (int t = 0; t < T; ++t) acc[t] = acc_min[t] = _mm256_setzero_ps(); \
    const int64_t nb = p.n / QK_K; \
    for (int64_t i = 0; i < nb; ++i) { \
      const BlockQ4_Kx8& b = w[i]; \
      prefetch_ahead(p.w, i * int64_t(sizeof(BlockQ4_Kx8)), int64_t(sizeof(BlockQ4_Kx8))); \
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.d))); \
      const __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.dmin))); \
      __m256 d[T], dmin[T]; \
      __m256i isum[T], imin[T]; \
      alignas(16) int32_t sub_sums[T][4];  /* int16 pairs {sum of sub-block 2p, of 2p+1} of the activation */ \
      for (int t = 0; t < T; ++t) { \
        const BlockQ8_K& a = reinterpret_cast<const BlockQ8_K*>(p.act + t * p.act_stride)[i]; \
        d[t] = _mm256_mul_ps(dw, _mm256_set1_ps(a.d)); \
        dmin[t] = _mm256_mul_ps(mw, _mm256_set1_ps(a.d)); \
        _mm_store_si128(reinterpret_cast<__m128i*>(sub_sums[t]), \
                        _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums)), \
                                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums + 8)))); \
        isum[t] = imin[t] = _mm256_setzero_si256(); \
      } \
      for (int q = 0; q < 4; ++q) { \
        SUMS<T>(p, b, i, q, isum); \
        const __m256i mn = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.mins[q]))); \
        for (int t = 0; t < T; ++t) { \
          const __m256i mins = _mm256_madd_epi16(mn, _mm256_set1_epi32(sub_sums[t][q])); \
          if (gemm) { \
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), d[t], acc[t]); \
            acc_min[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), dmin[t], acc_min[t]); \
            isum[t] = _mm256_setzero_si256(); \
          } else { \
            imin[t] = _mm256_add_epi32(imin[t], mins); \
          } \
        } \
      } \
      if (!gemm) \
        for (int t = 0; t < T; ++t) { \
          acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), d[t], acc[t]); \
          acc_min[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(imin[t]), dmin[t], acc_min[t]); \
        } \
    } \
    for (int t = 0; t < T; ++t) _mm256_storeu_ps(p.y + t * p.y_stride, _mm256_sub_ps(acc[t], acc_min[t])); \
  } \
};
CHASSIS_DEFINE_Q4_K_GROUP_TILE(TileQ4_Kx8, CHASSIS_AVX2, q4_k_group_sums)
CHASSIS_DEFINE_Q4_K_GROUP_TILE(TileQ4_Kx8Vnni, CHASSIS_VNNI, q4_k_group_sums_vnni)
CHASSIS_DEFINE_Q4_K_GROUP_TILE(TileQ4_Kx8AvxVnni, CHASSIS_AVX_VNNI, q4_k_group_sums_avx_vnni)
#undef CHASSIS_DEFINE_Q4_K_GROUP_TILE

// 16 bytes of each group's record side by side.
CHASSIS_AVX512 inline __m256i both_groups(const void* a, const void* b) {
  return _mm256_loadu2_m128i(static_cast<const __m128i*>(b), static_cast<const __m128i*>(a));
}

// Q4_K's integer work on a pair of groups for sub-blocks 2q (low nibbles) and 2q + 1 (high nibbles)
// of super-block i: sums[t] (lane r: row r) += s_2q * dot_2q + s_2q+1 * dot_2q+1 for T tokens.
// With maddubs: eight int16 terms per row, each |x| <= 2 * 15 * 128, their sum below 2^15, then one
// madd by the duplicated scales.
template <int T>
CHASSIS_AVX512 inline void q4_k_pair_sums(const TileProblem& p, const BlockQ4_Kx8& b0, const BlockQ4_Kx8& b1, int64_t i, int q,
                                          __m512i (&sums)[T]) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  // From lane r = int16 {s_2q, s_2q+1}: {s_2q, s_2q} and {s_2q+1, s_2q+1} (byte indices within each
  // 128-bit quarter, as vpshufb reads them).
  const __m512i dup_even = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13));
  const __m512i dup_odd = _mm512_add_epi8(dup_even, _mm512_set1_epi8(2));
  const __m512i sc = _mm512_cvtepu8_epi16(both_groups(b0.scales[q], b1.scales[q]));
  __m512i s_lo[T], s_hi[T];
  for (int t = 0; t < T; ++t) s_lo[t] = s_hi[t] = _mm512_setzero_si512();
  for (int m = 0; m < 8; ++m) {
    const __m512i raw = _mm512_inserti64x4(_mm512_castsi256_si512(load256(b0.qs[8 * q + m])), load256(b1.qs[8 * q + m]), 1);
    const __m512i lo = _mm512_and_si512(raw, low4), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
    for (int t = 0; t < T; ++t) {
      const int8_t* y = reinterpret_cast<const BlockQ8_K*>(p.act + t * p.act_stride)[i].qs + 64 * q + 4 * m;
      s_lo[t] = _mm512_add_epi16(s_lo[t], _mm512_maddubs_epi16(lo, broadcast_lane512(y)));
      s_hi[t] = _mm512_add_epi16(s_hi[t], _mm512_maddubs_epi16(hi, broadcast_lane512(y + 32)));
    }
  }
  const __m512i sc_even = _mm512_shuffle_epi8(sc, dup_even), sc_odd = _mm512_shuffle_epi8(sc, dup_odd);
  for (int t = 0; t < T; ++t)
    sums[t] = _mm512_add_epi32(sums[t], _mm512_add_epi32(_mm512_madd_epi16(s_lo[t], sc_even), _mm512_madd_epi16(s_hi[t], sc_odd)));
}
// The same with VNNI: each sub-block's dot in int32 lanes by vpdpbusd, then times its scale (the
// same exact integers).
template <int T>
CHASSIS_VNNI inline void q4_k_pair_sums_vnni(const TileProblem& p, const BlockQ4_Kx8& b0, const BlockQ4_Kx8& b1, int64_t i,
                                             int q, __m512i (&sums)[T]) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i sc = _mm512_cvtepu8_epi16(both_groups(b0.scales[q], b1.scales[q]));
  const __m512i sc_even = _mm512_and_si512(sc, _mm512_set1_epi32(0xFFFF)), sc_odd = _mm512_srli_epi32(sc, 16);
  __m512i s_lo[T], s_hi[T];
  for (int t = 0; t < T; ++t) s_lo[t] = s_hi[t] = _mm512_setzero_si512();
  for (int m = 0; m < 8; ++m) {
    const __m512i raw = _mm512_inserti64x4(_mm512_castsi256_si512(load256(b0.qs[8 * q + m])), load256(b1.qs[8 * q + m]), 1);
    const __m512i lo = _mm512_and_si512(raw, low4), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
    for (int t = 0; t < T; ++t) {
      const int8_t* y = reinterpret_cast<const BlockQ8_K*>(p.act + t * p.act_stride)[i].qs + 64 * q + 4 * m;
      s_lo[t] = _mm512_dpbusd_epi32(s_lo[t], lo, broadcast_lane512(y));
      s_hi[t] = _mm512_dpbusd_epi32(s_hi[t], hi, broadcast_lane512(y + 32));
    }
  }
  for (int t = 0; t < T; ++t)
    sums[t] = _mm512_add_epi32(sums[t], _mm512_add_epi32(_mm512_mullo_epi32(s_lo[t], sc_even), _mm512_mullo_epi32(s_hi[t], sc_odd)));
}

// The same with 512-bit registers over two adjacent groups (16 rows), as TileQ4_0x16, for two targets,
// the integer sums by SUMS (q4_k_pair_sums, or q4_k_pair_sums_vnni).
#define CHASSIS_DEFINE_Q4_K_PAIR_TILE(NAME, TARGET, SUMS) \
struct NAME { \
  static constexpr int kToks = 4; \
  /* Decode (one token) reads each block once: the 256-bit tiles do it in fewer instructions here */ \
  /* (bench, Llama-3.2-1B Q4_K_M tg48, alternating: 18.8 / 18.4 / 20.9 -> 19.7 / 20.6 / 22.6 tok/s). */ \
  static constexpr bool kOneToken = false; \
  template <int T> \
  TARGET static void tile(const TileProblem& p) { \
    const auto* w0 = reinterpret_cast<const BlockQ4_Kx8*>(p.w); \
    const auto* w1 = reinterpret_cast<const BlockQ4_Kx8*>(p.w + p.w_stride); \
    const bool gemm = p.variant.repack_gemm; \
    __m512 acc[T], acc_min[T]; \
    for (int t = 0; t < T; ++t) acc[t] = acc_min[t] = _mm512_setzero_ps(); \
    const int64_t nb = p.n / QK_K; \
    for (int64_t i = 0; i < nb; ++i) { \
      const BlockQ4_Kx8& b0 = w0[i]; \
      const BlockQ4_Kx8& b1 = w1[i]; \
      prefetch_ahead(p.w, i * int64_t(sizeof(BlockQ4_Kx8)), int64_t(sizeof(BlockQ4_Kx8))); \
      prefetch_ahead(p.w + p.w_stride, i * int64_t(sizeof(BlockQ4_Kx8)), int64_t(sizeof(BlockQ4_Kx8))); \
      const __m512 dw = _mm512_cvtph_ps(both_groups(b0.d, b1.d)), mw = _mm512_cvtph_ps(both_groups(b0.dmin, b1.dmin)); \
      __m512 d[T], dmin[T]; \
      __m512i isum[T], imin[T]; \
      alignas(16) int32_t sub_sums[T][4]; \
      for (int t = 0; t < T; ++t) { \
        const BlockQ8_K& a = reinterpret_cast<const BlockQ8_K*>(p.act + t * p.act_stride)[i]; \
        d[t] = _mm512_mul_ps(dw, _mm512_set1_ps(a.d)); \
        dmin[t] = _mm512_mul_ps(mw, _mm512_set1_ps(a.d)); \
        _mm_store_si128(reinterpret_cast<__m128i*>(sub_sums[t]), \
                        _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums)), \
                                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums + 8)))); \
        isum[t] = imin[t] = _mm512_setzero_si512(); \
      } \
      for (int q = 0; q < 4; ++q) { \
        SUMS<T>(p, b0, b1, i, q, isum); \
        const __m512i mn = _mm512_cvtepu8_epi16(both_groups(b0.mins[q], b1.mins[q])); \
        for (int t = 0; t < T; ++t) { \
          const __m512i mins = _mm512_madd_epi16(mn, _mm512_set1_epi32(sub_sums[t][q])); \
          if (gemm) { \
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), d[t], acc[t]); \
            acc_min[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(mins), dmin[t], acc_min[t]); \
            isum[t] = _mm512_setzero_si512(); \
          } else { \
            imin[t] = _mm512_add_epi32(imin[t], mins); \
          } \
        } \
      } \
      if (!gemm) \
        for (int t = 0; t < T; ++t) { \
          acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), d[t], acc[t]); \
          acc_min[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(imin[t]), dmin[t], acc_min[t]); \
        } \
    } \
    for (int t = 0; t < T; ++t) _mm512_storeu_ps(p.y + t * p.y_stride, _mm512_sub_ps(acc[t], acc_min[t])); \
  } \
};
CHASSIS_DEFINE_Q4_K_PAIR_TILE(TileQ4_Kx16, CHASSIS_AVX512, q4_k_pair_sums)
CHASSIS_DEFINE_Q4_K_PAIR_TILE(TileQ4_Kx16Vnni, CHASSIS_VNNI, q4_k_pair_sums_vnni)
#undef CHASSIS_DEFINE_Q4_K_PAIR_TILE

}  // namespace

void matmul_interleaved_q4_k(const TileProblem& p) {
  if (use_vnni_tiles()) return run_groups<TileQ4_Kx16Vnni, TileQ4_Kx8Vnni>(p);
  if (use_avx_vnni_tiles()) return run_groups<TileQ4_Kx16, TileQ4_Kx8AvxVnni>(p);
  return run_groups<TileQ4_Kx16, TileQ4_Kx8>(p);
}

}  // namespace chassis::interleaved
