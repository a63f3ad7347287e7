// Interleaved Q5_K tiles (layout: BlockQ5_Kx8 in kernels/interleave.h): eight rows per 256-bit
// group, one token at a time; for several tokens each group's quants are unpacked once and every
// token passes over them.
//
// Reference (kernels/ref/dot.cc, llama.cpp's ggml_vec_dot_q5_K_q8_K on AVX2): per super-block,
// eight integer lanes (lane m: elements 4m..4m+3 of every 32-element sub-block), each the sum over
// sub-blocks s of scale_s * dot(q5, activation), flushed with one FMA by d per super-block; the
// minimums summed apart (an integer per super-block, one FMA by -dmin); y = hsum8(acc) + mins.
// Lane m of row r here is 32-bit lane r of register m, so every float step is the reference's.
#include "kernels/cpu/interleaved_tiles.h"  // first: it includes avx512_util.h first

#include <vector>

namespace chassis::interleaved {
namespace {

// Sub-block S's fifth bits at bit 4 of each byte (a qh byte holds one bit per sub-block). The 16-bit
// shifts carry bits across bytes only into bits the mask clears.
template <int S>
CHASSIS_AVX2 inline __m256i fifth_bits(__m256i qh) {
  __m256i v = qh;
  if constexpr (S < 4) v = _mm256_slli_epi16(qh, 4 - S);
  if constexpr (S > 4) v = _mm256_srli_epi16(qh, S - 4);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

// The 5-bit quants (0..31) of lane m of sub-blocks 2P (lo) and 2P + 1 (hi) of the eight rows.
template <int P>
CHASSIS_AVX2 inline void q5_k_lanes(const BlockQ5_Kx8& b, int m, __m256i qh, __m256i& lo, __m256i& hi) {
  const __m256i raw = load256(b.qs[8 * P + m]), low4 = _mm256_set1_epi8(0x0F);
  lo = _mm256_or_si256(_mm256_and_si256(raw, low4), fifth_bits<2 * P>(qh));
  hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw, 4), low4), fifth_bits<2 * P + 1>(qh));
}

// Lane r of scale[s]: int16 {s_r, s_r}, row r's 6-bit scale of sub-block s, once per 16-bit product
// pair (what madd / vpdpwssd multiply the maddubs pairs by).
CHASSIS_AVX2 inline void q5_k_scales(const BlockQ5_Kx8& b, __m256i (&scale)[8]) {
  const __m256i dup_even = _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13));
  const __m256i dup_odd = _mm256_add_epi8(dup_even, _mm256_set1_epi8(2));
  for (int p = 0; p < 4; ++p) {
    const __m256i sc = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales[p])));
    scale[2 * p] = _mm256_shuffle_epi8(sc, dup_even);
    scale[2 * p + 1] = _mm256_shuffle_epi8(sc, dup_odd);
  }
}

// Row r's minimum term of super-block i, as an integer: sum over sub-blocks of min * (the
// activation's sum over the sub-block).
CHASSIS_AVX2 inline __m256i q5_k_min_sums(const BlockQ5_Kx8& b, const BlockQ8_K& a) {
  alignas(16) int32_t pairs[4];  // int16 {sum of sub-block 2p, of 2p + 1}
  _mm_store_si128(reinterpret_cast<__m128i*>(pairs), _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums)),
                                                                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums + 8))));
  __m256i sums = _mm256_setzero_si256();
  for (int p = 0; p < 4; ++p) {
    const __m256i mn = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.mins[p])));
    sums = _mm256_add_epi32(sums, _mm256_madd_epi16(mn, _mm256_set1_epi32(pairs[p])));
  }
  return sums;
}

// One group's super-block unpacked for several tokens: lane m of sub-block s of the eight rows at
// quants[m][s], and the scales as q5_k_scales gives them. Cache-line aligned (see Q5_0's staging).
struct alignas(64) Q5KStaged {
  uint8_t quants[8][8][32];
  __m256i scale[8];
};

template <int P>
CHASSIS_AVX2 inline void stage_pair(const BlockQ5_Kx8& b, int m, __m256i qh, Q5KStaged& out) {
  __m256i lo, hi;
  q5_k_lanes<P>(b, m, qh, lo, hi);
  _mm256_store_si256(reinterpret_cast<__m256i*>(out.quants[m][2 * P]), lo);
  _mm256_store_si256(reinterpret_cast<__m256i*>(out.quants[m][2 * P + 1]), hi);
}
CHASSIS_AVX2 void stage_group(const TileProblem& p, Q5KStaged* staged) {
  const auto* w = reinterpret_cast<const BlockQ5_Kx8*>(p.w);
  for (int64_t i = 0; i < p.n / QK_K; ++i) {
    for (int m = 0; m < 8; ++m) {
      const __m256i qh = load256(w[i].qh[m]);
      stage_pair<0>(w[i], m, qh, staged[i]);
      stage_pair<1>(w[i], m, qh, staged[i]);
      stage_pair<2>(w[i], m, qh, staged[i]);
      stage_pair<3>(w[i], m, qh, staged[i]);
    }
    q5_k_scales(w[i], staged[i].scale);
  }
}

// sums (lane r: row r) + scale * (the maddubs pairs of q and y): maddubs pairs are at most
// 2 * 31 * 128 in magnitude (no saturation), the scaled sums far inside int32.
CHASSIS_AVX2 inline __m256i scaled_dot(__m256i sums, __m256i q, __m256i y, __m256i scale) {
  return _mm256_add_epi32(sums, _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), scale));
}
CHASSIS_VNNI inline __m256i scaled_dot_vnni(__m256i sums, __m256i q, __m256i y, __m256i scale) {
  return _mm256_dpwssd_epi32(sums, _mm256_maddubs_epi16(q, y), scale);
}
CHASSIS_AVX_VNNI inline __m256i scaled_dot_avx_vnni(__m256i sums, __m256i q, __m256i y, __m256i scale) {
  return _mm256_dpwssd_avx_epi32(sums, _mm256_maddubs_epi16(q, y), scale);
}

// The tile for three targets, the integer steps by DOT (the same body: a target attribute cannot be
// a template parameter).
#define CHASSIS_DEFINE_Q5_K_TILE(NAME, TARGET, DOT)                                                    \
  struct NAME {                                                                                        \
    template <int P>                                                                                   \
    TARGET static __m256i pair_step(__m256i sums, __m256i lo, __m256i hi, const int8_t* y, int m,      \
                                    const __m256i (&scale)[8]) {                                       \
      sums = DOT(sums, lo, broadcast_lane(y + 64 * P + 4 * m), scale[2 * P]);                          \
      return DOT(sums, hi, broadcast_lane(y + 64 * P + 32 + 4 * m), scale[2 * P + 1]);                 \
    }                                                                                                  \
    template <int P>                                                                                   \
    TARGET static __m256i unpacked_step(__m256i sums, const BlockQ5_Kx8& b, __m256i qh, const int8_t* y, \
                                        int m, const __m256i (&scale)[8]) {                            \
      __m256i lo, hi;                                                                                  \
      q5_k_lanes<P>(b, m, qh, lo, hi);                                                                 \
      return pair_step<P>(sums, lo, hi, y, m, scale);                                                  \
    }                                                                                                  \
    template <int P>                                                                                   \
    TARGET static __m256i staged_step(__m256i sums, const Q5KStaged& s, const int8_t* y, int m) {      \
      const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(s.quants[m][2 * P]));      \
      const __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(s.quants[m][2 * P + 1]));  \
      return pair_step<P>(sums, lo, hi, y, m, s.scale);                                                \
    }                                                                                                  \
    /* Token t over the group: its quants unpacked here (staged == nullptr) or read from staged. */    \
    TARGET static void one_token(const TileProblem& p, const Q5KStaged* staged, int t) {               \
      const auto* w = reinterpret_cast<const BlockQ5_Kx8*>(p.w);                                       \
      const auto* act = reinterpret_cast<const BlockQ8_K*>(p.act + t * p.act_stride);                  \
      __m256 acc[8];                                                                                   \
      for (auto& a : acc) a = _mm256_setzero_ps();                                                     \
      __m256 mins = _mm256_setzero_ps();                                                               \
      for (int64_t i = 0; i < p.n / QK_K; ++i) {                                                       \
        const BlockQ5_Kx8& b = w[i];                                                                   \
        const BlockQ8_K& a = act[i];                                                                   \
        if (!staged) prefetch_ahead(p.w, i * int64_t(sizeof(BlockQ5_Kx8)), int64_t(sizeof(BlockQ5_Kx8))); \
        const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.d))), \
                                       _mm256_set1_ps(a.d));                                           \
        const __m256 dmin = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.dmin))), \
                                          _mm256_set1_ps(-a.d));                                       \
        mins = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(q5_k_min_sums(b, a)), mins);                   \
        if (staged) {                                                                                  \
          const Q5KStaged& s = staged[i];                                                              \
          for (int m = 0; m < 8; ++m) {                                                                \
            __m256i sums = staged_step<0>(_mm256_setzero_si256(), s, a.qs, m);                         \
            sums = staged_step<1>(sums, s, a.qs, m);                                                   \
            sums = staged_step<2>(sums, s, a.qs, m);                                                   \
            sums = staged_step<3>(sums, s, a.qs, m);                                                   \
            acc[m] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc[m]);                             \
          }                                                                                            \
        } else {                                                                                       \
          __m256i scale[8];                                                                            \
          q5_k_scales(b, scale);                                                                       \
          for (int m = 0; m < 8; ++m) {                                                                \
            const __m256i qh = load256(b.qh[m]);                                                       \
            __m256i sums = unpacked_step<0>(_mm256_setzero_si256(), b, qh, a.qs, m, scale);            \
            sums = unpacked_step<1>(sums, b, qh, a.qs, m, scale);                                      \
            sums = unpacked_step<2>(sums, b, qh, a.qs, m, scale);                                      \
            sums = unpacked_step<3>(sums, b, qh, a.qs, m, scale);                                      \
            acc[m] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc[m]);                             \
          }                                                                                            \
        }                                                                                              \
      }                                                                                                \
      _mm256_storeu_ps(p.y + t * p.y_stride, _mm256_add_ps(hsum8_across(acc), mins));                  \
    }                                                                                                  \
  };
CHASSIS_DEFINE_Q5_K_TILE(TileQ5_Kx8, CHASSIS_AVX2, scaled_dot)
CHASSIS_DEFINE_Q5_K_TILE(TileQ5_Kx8Vnni, CHASSIS_VNNI, scaled_dot_vnni)
CHASSIS_DEFINE_Q5_K_TILE(TileQ5_Kx8AvxVnni, CHASSIS_AVX_VNNI, scaled_dot_avx_vnni)
#undef CHASSIS_DEFINE_Q5_K_TILE

// ---- Prefill over pairs of groups (16 rows) in 512-bit registers, each half doing the 256-bit tile's
// operations on its group: half the instructions per row (Q5_K 2048 x 57344, 64 tokens, two threads:
// 61 -> 38 ms). Decode stays on the 256-bit tile: a pair unpacking 16 rows as they stream in decoded
// Llama-3.2-1B Q5_K_M 0.94x as fast (--ab), as Q4_K's did.

// Two groups' super-block unpacked for several tokens: quants[m][s] is lane m of sub-block s of the
// first group's rows (32 bytes), then the second's; scale[s] the same for q5_k_scales.
struct alignas(64) Q5KStagedPair {
  uint8_t quants[8][8][64];
  __m512i scale[8];
};

CHASSIS_AVX512 inline __m512i join(__m256i first, __m256i second) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
}
template <int P>
CHASSIS_AVX512 inline void stage_pair_lanes(const BlockQ5_Kx8& b0, const BlockQ5_Kx8& b1, int m, __m256i qh0, __m256i qh1,
                                            Q5KStagedPair& out) {
  __m256i lo0, hi0, lo1, hi1;
  q5_k_lanes<P>(b0, m, qh0, lo0, hi0);
  q5_k_lanes<P>(b1, m, qh1, lo1, hi1);
  _mm512_store_si512(out.quants[m][2 * P], join(lo0, lo1));
  _mm512_store_si512(out.quants[m][2 * P + 1], join(hi0, hi1));
}
// p: the pair's first group (the second is p.w_stride further).
CHASSIS_AVX512 void stage_group_pair(const TileProblem& p, Q5KStagedPair* staged) {
  const auto* w0 = reinterpret_cast<const BlockQ5_Kx8*>(p.w);
  const auto* w1 = reinterpret_cast<const BlockQ5_Kx8*>(p.w + p.w_stride);
  for (int64_t i = 0; i < p.n / QK_K; ++i) {
    for (int m = 0; m < 8; ++m) {
      const __m256i qh0 = load256(w0[i].qh[m]), qh1 = load256(w1[i].qh[m]);
      stage_pair_lanes<0>(w0[i], w1[i], m, qh0, qh1, staged[i]);
      stage_pair_lanes<1>(w0[i], w1[i], m, qh0, qh1, staged[i]);
      stage_pair_lanes<2>(w0[i], w1[i], m, qh0, qh1, staged[i]);
      stage_pair_lanes<3>(w0[i], w1[i], m, qh0, qh1, staged[i]);
    }
    __m256i s0[8], s1[8];
    q5_k_scales(w0[i], s0);
    q5_k_scales(w1[i], s1);
    for (int s = 0; s < 8; ++s) staged[i].scale[s] = join(s0[s], s1[s]);
  }
}

CHASSIS_AVX512 inline __m512i scaled_dot512(__m512i sums, __m512i q, __m512i y, __m512i scale) {
  return _mm512_add_epi32(sums, _mm512_madd_epi16(_mm512_maddubs_epi16(q, y), scale));
}
CHASSIS_VNNI inline __m512i scaled_dot512_vnni(__m512i sums, __m512i q, __m512i y, __m512i scale) {
  return _mm512_dpwssd_epi32(sums, _mm512_maddubs_epi16(q, y), scale);
}

// Token t over a staged pair (TileQ5_Kx8::one_token's steps, 16 rows at once), by DOT.
#define CHASSIS_Q5_K_PAIR_TOKEN(NAME, TARGET, DOT)                                                         \
  TARGET void NAME(const TileProblem& p, const Q5KStagedPair* staged, int t) {                             \
    const auto* w0 = reinterpret_cast<const BlockQ5_Kx8*>(p.w);                                            \
    const auto* w1 = reinterpret_cast<const BlockQ5_Kx8*>(p.w + p.w_stride);                               \
    const auto* act = reinterpret_cast<const BlockQ8_K*>(p.act + t * p.act_stride);                        \
    __m512 acc[8];                                                                                         \
    for (auto& a : acc) a = _mm512_setzero_ps();                                                           \
    __m512 mins = _mm512_setzero_ps();                                                                     \
    for (int64_t i = 0; i < p.n / QK_K; ++i) {                                                             \
      const BlockQ8_K& a = act[i];                                                                         \
      const Q5KStagedPair& s = staged[i];                                                                  \
      const __m512 d = _mm512_mul_ps(pair_ph_to_ps(w0[i].d, w1[i].d), _mm512_set1_ps(a.d));                \
      const __m512 dmin = _mm512_mul_ps(pair_ph_to_ps(w0[i].dmin, w1[i].dmin), _mm512_set1_ps(-a.d));      \
      const __m512i min_sums = join(q5_k_min_sums(w0[i], a), q5_k_min_sums(w1[i], a));                     \
      mins = _mm512_fmadd_ps(dmin, _mm512_cvtepi32_ps(min_sums), mins);                                    \
      for (int m = 0; m < 8; ++m) {                                                                        \
        __m512i sums = _mm512_setzero_si512();                                                             \
        for (int sb = 0; sb < 8; ++sb)                                                                     \
          sums = DOT(sums, _mm512_load_si512(s.quants[m][sb]), broadcast_lane512(a.qs + 32 * sb + 4 * m), s.scale[sb]); \
        acc[m] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sums), acc[m]);                                     \
      }                                                                                                    \
    }                                                                                                      \
    _mm512_storeu_ps(p.y + t * p.y_stride, _mm512_add_ps(hsum8_across512(acc), mins));                     \
  }
CHASSIS_Q5_K_PAIR_TOKEN(q5_k_pair_token, CHASSIS_AVX512, scaled_dot512)
CHASSIS_Q5_K_PAIR_TOKEN(q5_k_pair_token_vnni, CHASSIS_VNNI, scaled_dot512_vnni)
#undef CHASSIS_Q5_K_PAIR_TOKEN

// Every group: one token reads the quants as it unpacks them; several tokens unpack each group (or,
// with AVX-512, each pair of groups) once.
template <class K>
void run_q5_k_groups(const TileProblem& p, void (*pair_token)(const TileProblem&, const Q5KStagedPair*, int)) {
  const int64_t n_groups = p.n_rows / kInterleavedRows;
  if (p.n_tok == 1) {
    for (int64_t k = 0; k < n_groups; ++k) K::one_token(group_problem(p, k), nullptr, 0);
    return;
  }
  const auto nb = size_t(p.n / QK_K);
  int64_t k = 0;
  if (pair_token) {
    thread_local std::vector<Q5KStagedPair> staged;
    if (staged.size() < nb) staged.resize(nb);
    for (; k + 2 <= n_groups; k += 2) {
      const TileProblem g = group_problem(p, k);
      stage_group_pair(g, staged.data());
      for (int t = 0; t < p.n_tok; ++t) pair_token(g, staged.data(), t);
    }
  }
  thread_local std::vector<Q5KStaged> staged;
  if (staged.size() < nb) staged.resize(nb);
  for (; k < n_groups; ++k) {
    const TileProblem g = group_problem(p, k);
    stage_group(g, staged.data());
    for (int t = 0; t < p.n_tok; ++t) K::one_token(g, staged.data(), t);
  }
}

}  // namespace

void matmul_interleaved_q5_k(const TileProblem& p) {
  if (use_vnni_tiles()) return run_q5_k_groups<TileQ5_Kx8Vnni>(p, q5_k_pair_token_vnni);
  if (use_avx512_tiles()) return run_q5_k_groups<TileQ5_Kx8>(p, q5_k_pair_token);
  if (use_avx_vnni_tiles()) return run_q5_k_groups<TileQ5_Kx8AvxVnni>(p, nullptr);
  return run_q5_k_groups<TileQ5_Kx8>(p, nullptr);
}

}  // namespace chassis::interleaved
