// Interleaved Q4_1 and Q5_1 tiles (layouts: BlockQ4_1x8, BlockQ5_1x8 in kernels/interleave.h), the
// types read against Q8_1 activations: eight rows per 256-bit group, one token at a time; for several
// tokens each group's quants are unpacked once and every token passes over them. (Qwen2.5-0.5B's
// Q5_K_M is mostly Q5_1: llama-quantize's Q5_K fallback for its 896-wide rows.)
//
// Reference (kernels/ref/dot.cc, dot_lanes_q8_1): eight lanes of 4-element integer sums per block
// (the quants unsigned, 0..15 or 0..31), lane l's acc = fma(d_w * d_a, sum, acc) in block order; the
// minimum term apart, mins = fma(m_w, s_a, mins); y = hsum8(acc) + mins. acc[l] here holds lane l of
// the eight rows, so every float step is the reference's.
#include "kernels/cpu/interleaved_tiles.h"  // first: it includes avx512_util.h first

#include <vector>

namespace chassis::interleaved {
namespace {

CHASSIS_AVX2 inline __m256 h8_to_ps(const uint16_t (&h)[8]) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
}

// Token t over the group, its quants unpacked here (unpacked == nullptr) or read from unpacked; each
// lane by LANE_FMA (the same body for three targets: a target attribute cannot be a template
// parameter). The lanes' sums start at 0: the quants carry no offset, the minimum is its own term.
#define CHASSIS_Q8_1_TOKEN(NAME, TARGET, LANE_FMA)                                                        \
  template <typename BX8>                                                                                \
  TARGET void NAME(const TileProblem& p, const Q5Unpacked* unpacked, int t) {                            \
    const auto* w = reinterpret_cast<const BX8*>(p.w);                                                   \
    const auto* act = reinterpret_cast<const BlockQ8_1*>(p.act + t * p.act_stride);                      \
    __m256 acc[8];                                                                                       \
    for (auto& a : acc) a = _mm256_setzero_ps();                                                         \
    __m256 mins = _mm256_setzero_ps();                                                                   \
    for (int64_t i = 0; i < p.n / QK; ++i) {                                                             \
      const BlockQ8_1& a = act[i];                                                                       \
      mins = _mm256_fmadd_ps(h8_to_ps(w[i].m), _mm256_set1_ps(h2f(a.s)), mins);                          \
      const __m256 d = _mm256_mul_ps(h8_to_ps(w[i].d), _mm256_set1_ps(h2f(a.d)));                        \
      __m256i lane[8];                                                                                   \
      if (unpacked) {                                                                                    \
        for (int l = 0; l < 8; ++l) lane[l] = load256(unpacked[i].lane[l]);                              \
      } else {                                                                                           \
        prefetch_ahead(p.w, i * int64_t(sizeof(BX8)), int64_t(sizeof(BX8)));                            \
        block_lanes(w[i], lane);                                                                         \
      }                                                                                                  \
      for (int l = 0; l < 8; ++l) acc[l] = LANE_FMA(lane[l], a.qs + 4 * l, 0, d, acc[l]);               \
    }                                                                                                    \
    _mm256_storeu_ps(p.y + t * p.y_stride, _mm256_add_ps(hsum8_across(acc), mins));                      \
  }
CHASSIS_Q8_1_TOKEN(token, CHASSIS_AVX2, q5_lane_fma)
CHASSIS_Q8_1_TOKEN(token_vnni, CHASSIS_VNNI, q5_lane_fma_vnni256)
CHASSIS_Q8_1_TOKEN(token_avx_vnni, CHASSIS_AVX_VNNI, q5_lane_fma_avx_vnni)
#undef CHASSIS_Q8_1_TOKEN

// Prefill over pairs of groups (16 rows) in 512-bit registers, each half doing the 256-bit token's
// operations on its group: a pair's quants unpacked once (unpack_pair), then every token passes
// over them.
#define CHASSIS_Q8_1_PAIR_TOKEN(NAME, TARGET, LANE_FMA)                                                   \
  template <typename BX8>                                                                                \
  TARGET void NAME(const TileProblem& p, const Q5UnpackedPair* unpacked, int t) {                        \
    const auto* w0 = reinterpret_cast<const BX8*>(p.w);                                                  \
    const auto* w1 = reinterpret_cast<const BX8*>(p.w + p.w_stride);                                     \
    const auto* act = reinterpret_cast<const BlockQ8_1*>(p.act + t * p.act_stride);                      \
    __m512 acc[8];                                                                                       \
    for (auto& a : acc) a = _mm512_setzero_ps();                                                         \
    __m512 mins = _mm512_setzero_ps();                                                                   \
    for (int64_t i = 0; i < p.n / QK; ++i) {                                                             \
      const BlockQ8_1& a = act[i];                                                                       \
      mins = _mm512_fmadd_ps(pair_ph_to_ps(w0[i].m, w1[i].m), _mm512_set1_ps(h2f(a.s)), mins);           \
      const __m512 d = _mm512_mul_ps(pair_ph_to_ps(w0[i].d, w1[i].d), _mm512_set1_ps(h2f(a.d)));         \
      for (int l = 0; l < 8; ++l) acc[l] = LANE_FMA(_mm512_load_si512(unpacked[i].lane[l]), a.qs + 4 * l, 0, d, acc[l]); \
    }                                                                                                    \
    _mm512_storeu_ps(p.y + t * p.y_stride, _mm512_add_ps(hsum8_across512(acc), mins));                   \
  }
CHASSIS_Q8_1_PAIR_TOKEN(pair_token, CHASSIS_AVX512, q5_lane_fma512)
CHASSIS_Q8_1_PAIR_TOKEN(pair_token_vnni, CHASSIS_VNNI, q5_lane_fma_vnni)
#undef CHASSIS_Q8_1_PAIR_TOKEN

template <typename BX8, void (*Token)(const TileProblem&, const Q5Unpacked*, int)>
void run_groups_q8_1(const TileProblem& p, PairTokenFn pair) {
  const int64_t n_groups = p.n_rows / kInterleavedRows;
  if (p.n_tok == 1) {
    for (int64_t k = 0; k < n_groups; ++k) Token(group_problem(p, k), nullptr, 0);
    return;
  }
  const int64_t k0 = pair ? run_unpacked_pairs<BX8>(p, 0, pair) : 0;
  thread_local std::vector<Q5Unpacked> unpacked;
  if (unpacked.size() < size_t(p.n / QK)) unpacked.resize(size_t(p.n / QK));
  for (int64_t k = k0; k < n_groups; ++k) {
    const TileProblem g = group_problem(p, k);
    unpack_group<BX8>(g, unpacked.data());
    for (int t = 0; t < p.n_tok; ++t) Token(g, unpacked.data(), t);
  }
}

template <typename BX8>
void run_type(const TileProblem& p) {
  if (use_vnni_tiles()) return run_groups_q8_1<BX8, token_vnni<BX8>>(p, pair_token_vnni<BX8>);
  if (use_avx512_tiles()) return run_groups_q8_1<BX8, token<BX8>>(p, pair_token<BX8>);
  if (use_avx_vnni_tiles()) return run_groups_q8_1<BX8, token_avx_vnni<BX8>>(p, nullptr);
  return run_groups_q8_1<BX8, token<BX8>>(p, nullptr);
}

}  // namespace

void matmul_interleaved_q8_1(DType wt, const TileProblem& p) {
  if (wt == DType::Q4_1) return run_type<BlockQ4_1x8>(p);
  return run_type<BlockQ5_1x8>(p);
}

}  // namespace chassis::interleaved
