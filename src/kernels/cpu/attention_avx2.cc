#include "kernels/cpu/attention_avx2.h"

#include <immintrin.h>

#include <cmath>

#define CHASSIS_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace chassis {
namespace {

constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

CHASSIS_AVX2 inline __m256 load_h(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// Round 8 floats through f16 (what storing the reference's f16 accumulator does).
CHASSIS_AVX2 inline __m256 round_h(__m256 x) { return _mm256_cvtph_ps(_mm256_cvtps_ph(x, kRound)); }

}  // namespace

CHASSIS_AVX2 bool attend_one_avx2(const float* q, const KvRows& k, const KvRows& v, int64_t kv_begin, int64_t kv_end,
                                  float* out, const AttentionParams& p) {
  const int d = p.head_dim;
  if (p.tiled || k.f32 || d % 32 != 0 || d > 256) return false;
  const int nv = d / 8;
  __m256 qv[32], acc[32];
  for (int i = 0; i < nv; ++i) {
    qv[i] = round_h(_mm256_loadu_ps(q + 8 * i));  // q is rounded to f16 for the f16 dot product
    acc[i] = _mm256_setzero_ps();
  }
  float scale = p.scale;
  if (p.softcap > 0) scale /= p.softcap;
  float S = 0, M = -INFINITY;
  KvRowCursor kc(k, kv_begin), vc(v, kv_begin);
  for (int64_t j = kv_begin; j < kv_end; ++j, kc.next(), vc.next()) {
    const uint16_t* kr = kc.row();
    // ggml_vec_dot_f16's order: four 8-lane FMA accumulators over steps of 32, (0+2)+(1+3), hadd tree.
    __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int i = 0; i < nv; i += 4)
      for (int jj = 0; jj < 4; ++jj) a[jj] = _mm256_fmadd_ps(load_h(kr + 8 * (i + jj)), qv[i + jj], a[jj]);
    const __m256 c = _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[1], a[3]));
    const __m128 t = _mm_add_ps(_mm256_castps256_ps128(c), _mm256_extractf128_ps(c, 1));
    const __m128 t1 = _mm_hadd_ps(t, t);
    float s = _mm_cvtss_f32(_mm_hadd_ps(t1, t1)) * scale;
    if (p.softcap > 0) s = p.softcap * std::tanh(s);
    const float m_old = M;
    float ms = 1.0f, vs = 1.0f;
    if (s > M) {
      M = s;
      ms = std::exp(m_old - M);
      const __m256 msv = _mm256_set1_ps(ms);
      for (int i = 0; i < nv; ++i) acc[i] = round_h(_mm256_mul_ps(acc[i], msv));
    } else {
      vs = std::exp(s - M);
    }
    const uint16_t* vr = vc.row();
    const __m256 vsv = _mm256_set1_ps(vs);
    for (int i = 0; i < nv; ++i) acc[i] = round_h(_mm256_fmadd_ps(load_h(vr + 8 * i), vsv, acc[i]));
    S = std::fma(S, ms, vs);
  }
  const __m256 inv = _mm256_set1_ps(S == 0 ? 0.0f : 1.0f / S);
  for (int i = 0; i < nv; ++i) _mm256_storeu_ps(out + 8 * i, _mm256_mul_ps(acc[i], inv));
  return true;
}

}  // namespace chassis
