// What the decode attention kernels share (attention_avx2.cc: the 512-bit grouped-heads body and the
// one-head AVX2 body; attention_heads_avx2.cc: the 256-bit grouped-heads body): f16 loads and the
// f16 round trip of the reference's accumulator, and the online softmax's steps for a block of keys.
#pragma once
#include "kernels/cpu/avx2_util.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/expf_libm.h"
#include "kernels/ops.h"

namespace chassis {
namespace attention_steps {

inline constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

CHASSIS_AVX2 inline __m256 load_h(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// Round 8 floats through f16 (what storing the reference's f16 accumulator does).
CHASSIS_AVX2 inline __m256 round_h(__m256 x) { return _mm256_cvtph_ps(_mm256_cvtps_ph(x, kRound)); }

// The online softmax's scalar steps for a block of nk scores, in key order: the running max M, and
// per key the factor the accumulators are scaled by (ms) and the key's weight (vs), as the reference
// takes them one key at a time. Returns the keys that raised M (bit jj: key jj).
inline unsigned online_softmax_steps(const float* s, int nk, float& M, float* ms, float* vs) {
  unsigned raised = 0;
  for (int jj = 0; jj < nk; ++jj) {
    const float m_old = M;
    if (s[jj] > M) {
      raised |= 1u << jj;
      M = s[jj];
      ms[jj] = std::exp(m_old - M);
      vs[jj] = 1.0f;
    } else {
      ms[jj] = 1.0f;
      vs[jj] = std::exp(s[jj] - M);
    }
  }
  return raised;
}

// online_softmax_steps for a block of at most eight keys on AVX2, where expf8_avx2 is the library's
// expf (use_libm_expf8_avx2): as online_softmax_block8 of attention_avx2.cc (see there) with the
// AVX-512 masks as vector compares and blends. Each key gets the scalar steps' very values.
CHASSIS_AVX2 inline __m256 lanes_up_avx2(__m256 v, int k) {  // lane j <- lane j - k; lanes below k: -inf
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), kk = _mm256_set1_epi32(k);
  const __m256 moved = _mm256_permutevar8x32_ps(v, _mm256_and_si256(_mm256_sub_epi32(iota, kk), _mm256_set1_epi32(7)));
  return _mm256_blendv_ps(moved, _mm256_set1_ps(-INFINITY), _mm256_castsi256_ps(_mm256_cmpgt_epi32(kk, iota)));
}
// e = a vector expf of arg, with the library's expf put in the lanes it left (bit l of scalar: lane l).
CHASSIS_AVX2 inline __m256 with_scalar_exps(__m256 e, __m256 arg, unsigned scalar) {
  if (!scalar) return e;
  alignas(32) float a[8], r[8];
  _mm256_store_ps(a, arg);
  _mm256_store_ps(r, e);
  for (int l = 0; l < 8; ++l)
    if (scalar >> l & 1) r[l] = std::exp(a[l]);
  return _mm256_load_ps(r);
}
// exp of the lanes of arg: expf8_avx2, and the library's expf where it leaves a lane.
CHASSIS_AVX2 inline __m256 exp_lanes_avx2(__m256 arg) {
  unsigned scalar = 0;
  const __m256 e = expf8_avx2(arg, scalar);
  return with_scalar_exps(e, arg, scalar);
}
CHASSIS_AVX2 inline unsigned online_softmax_block8_avx2(const float* scores, int nk, float& M, float* ms, float* vs) {
  const __m256 minus_inf = _mm256_set1_ps(-INFINITY), one = _mm256_set1_ps(1.0f);
  const __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(nk), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
  const __m256 s = _mm256_blendv_ps(minus_inf, _mm256_maskload_ps(scores, _mm256_castps_si256(live)), live);
  const __m256 m = _mm256_set1_ps(M);
  if (_mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(s, m, _CMP_GT_OQ), live)) == 0) {  // nothing raised
    _mm256_storeu_ps(ms, one);
    _mm256_storeu_ps(vs, exp_lanes_avx2(_mm256_and_ps(_mm256_sub_ps(s, m), live)));
    return 0;
  }
  __m256 p = _mm256_blendv_ps(minus_inf, s, _mm256_cmp_ps(s, s, _CMP_ORD_Q));  // NaN scores as -inf
  for (int k = 1; k < 8; k *= 2) p = _mm256_max_ps(p, lanes_up_avx2(p, k));  // p_j = max(s_0..s_j)
  const __m256 prev = _mm256_max_ps(lanes_up_avx2(p, 1), m);                  // M before key j
  const __m256 raised = _mm256_and_ps(_mm256_cmp_ps(s, prev, _CMP_GT_OQ), live);
  // exp(M_old - s) where s is the new maximum, else exp(s - M); dead lanes exp(0).
  const __m256 ev = exp_lanes_avx2(_mm256_and_ps(_mm256_blendv_ps(_mm256_sub_ps(s, prev), _mm256_sub_ps(prev, s), raised), live));
  _mm256_storeu_ps(ms, _mm256_blendv_ps(one, ev, raised));
  _mm256_storeu_ps(vs, _mm256_blendv_ps(ev, one, raised));
  alignas(32) float top[8];
  _mm256_store_ps(top, p);
  M = std::max(M, top[7]);
  return unsigned(_mm256_movemask_ps(raised));
}

}  // namespace attention_steps

// The grouped-heads decode kernel on 256-bit registers (attention_heads_avx2.cc), for
// attend_heads_avx2 where AVX-512 is off: n_q heads of size 32, 64 or 128; false for any other.
bool attend_heads_avx2_body(int n_q, const float* q, int64_t q_stride, const KvRows& k, const KvRows& v,
                            int64_t kv_begin, int64_t kv_end, float* out, int64_t out_stride, const AttentionParams& p);

}  // namespace chassis
