#include "kernels/cpu/ops_avx2.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/expf_poly_avx2.h"
#include "kernels/quants.h"
#include "kernels/ref/elementwise.h"

namespace chassis {
namespace {

CHASSIS_AVX2 inline __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
CHASSIS_AVX2 inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}
// 32 floats times `scale`, rounded to nearest-even integers (std::nearbyint in the default rounding
// mode), as 32 int8 with saturation (the reference's values stay within -127..127 anyway).
CHASSIS_AVX2 inline __m256i round_to_i8(const float* x, __m256 scale) {
  __m256i i[4];
  for (int k = 0; k < 4; ++k) {
    const __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), scale),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    i[k] = _mm256_cvtps_epi32(v);
  }
  // packs interleave 128-bit lanes; the permute restores element order
  const __m256i w01 = _mm256_packs_epi32(i[0], i[1]), w23 = _mm256_packs_epi32(i[2], i[3]);
  const __m256i b = _mm256_packs_epi16(w01, w23);
  return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// quant_q8_0: d = amax / 127, q = nearbyint(x * (127 / amax)).
CHASSIS_AVX2 void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += QK) {
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) m = _mm256_max_ps(m, abs8(_mm256_loadu_ps(x + 8 * k)));
    const float amax = hmax8(m);
    const float id = amax != 0 ? 127.f / amax : 0.f;
    y[b].d = f32_to_f16(amax / 127.f);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs), round_to_i8(x, _mm256_set1_ps(id)));
  }
}

// quant_q8_k: the signed value of largest magnitude (the first one, on ties) sets the scale
// -127 / max; q = min(127, nearbyint(iscale * x)); bsums are sums of 16.
CHASSIS_AVX2 void quantize_q8_k(const float* x, BlockQ8_K* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += QK_K) {
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < QK_K / 8; ++k) m = _mm256_max_ps(m, abs8(_mm256_loadu_ps(x + 8 * k)));
    const float amax = hmax8(m);
    if (amax == 0) {
      std::memset(&y[b], 0, sizeof(y[b]));
      continue;
    }
    // (Bounded: a NaN among x makes amax no element's magnitude; the result is garbage then, as the
    // reference's, but the scan stays in the block.)
    int first = 0;
    while (first < QK_K - 1 && std::fabs(x[first]) != amax) ++first;
    const float iscale = -127.f / x[first];
    const __m256 s = _mm256_set1_ps(iscale);
    for (int k = 0; k < QK_K / 32; ++k) {
      const __m256i q = _mm256_min_epi8(round_to_i8(x + 32 * k, s), _mm256_set1_epi8(127));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs + 32 * k), q);
      // sums of the two 16-element groups of this 32
      const __m256i w = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
      __m128i h = _mm_add_epi32(_mm256_castsi256_si128(w), _mm_setzero_si128());
      const __m128i lo = _mm256_castsi256_si128(w), hi = _mm256_extracti128_si256(w, 1);
      h = _mm_hadd_epi32(lo, hi);  // [s0+s1, s2+s3, s4+s5, s6+s7]
      h = _mm_hadd_epi32(h, h);    // [group 0, group 1, ...]
      y[b].bsums[2 * k] = int16_t(_mm_cvtsi128_si32(h));
      y[b].bsums[2 * k + 1] = int16_t(_mm_extract_epi32(h, 1));
    }
    y[b].d = 1 / iscale;
  }
}

}  // namespace

CHASSIS_AVX2 void rope_rotate_avx2(float* x, int n_head, int head_dim, const RopeParams& p, const float* cs, const float* sn) {
  rope_rotate_body(x, n_head, head_dim, p, cs, sn);
}


CHASSIS_AVX2 void swiglu_avx2(const float* gate, const float* up, float* out, int64_t n) {
  // out = g / (1 + exp(-g)) * up: whole 8-lane groups by the polynomial, the rest as the reference
  // does (swiglu_body).
  const int64_t nv = n & ~int64_t(7);
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < nv; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = expf_poly8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
  }
  swiglu_body(gate + nv, up + nv, out + nv, n - nv);  // fewer than 8 left: all by libm's exp there
}

CHASSIS_AVX2 void round_f16_avx2(const float* x, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
  for (; i < n; ++i) out[i] = round_f16(x[i]);
}

CHASSIS_AVX2 void f32_to_f16_row_avx2(const float* x, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    // F16C keeps a NaN's upper payload bits; the reference writes one quiet NaN per sign.
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0)
      for (int64_t j = i; j < i + 8; ++j) out[j] = f32_to_f16(x[j]);
  }
  for (; i < n; ++i) out[i] = f32_to_f16(x[i]);
}

bool quantize_row_avx2(DType t, const float* src, void* dst, int64_t n) {
  switch (t) {
    case DType::Q8_0: quantize_q8_0(src, static_cast<BlockQ8_0*>(dst), n / QK); return true;
    case DType::Q8_K: quantize_q8_k(src, static_cast<BlockQ8_K*>(dst), n / QK_K); return true;
    default: return false;
  }
}

}  // namespace chassis
