#include "kernels/cpu/attention_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/avx2_util.h"
#include "kernels/ref/elementwise.h"

namespace chassis {
namespace {

constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

CHASSIS_AVX2 inline __m256 load_h(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// Round 8 floats through f16 (what storing the reference's f16 accumulator does).
CHASSIS_AVX2 inline __m256 round_h(__m256 x) { return _mm256_cvtph_ps(_mm256_cvtps_ph(x, kRound)); }

// In place: r[c] lane l <- r[l] lane c.
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

// The tiled kernel of kernels/ref/ops.cc (batches of 64+ queries), operation for operation: each
// key's score is the same sequential FMA chain over the head dimension, computed for 8 keys at once
// in the 8 lanes (rows transposed so lane l walks key l); V is accumulated element-wise, which is
// the same per-element FMA. The polynomial exp is the reference's own function.
CHASSIS_AVX2 bool attend_tiled_avx2(const float* q, const KvRows& k, const KvRows& v, int64_t kv_begin,
                                    int64_t kv_end, float* out, const AttentionParams& p) {
  const int d = p.head_dim;
  if (d % 8 != 0 || d > 1024) return false;
  constexpr int kTile = 64;
  float scale = p.scale;
  if (p.softcap > 0) scale /= p.softcap;
  alignas(32) float acc[1024];
  std::fill(acc, acc + d, 0.0f);
  float S = 0, M = -INFINITY;
  alignas(32) float s[kTile];
  KvRowCursor kc(k, kv_begin), vc(v, kv_begin);
  for (int64_t t0 = kv_begin / kTile * kTile; t0 < kv_end; t0 += kTile) {
    for (int g = 0; g < kTile; g += 8) {
      const uint16_t* rows[8];
      bool any = false;
      for (int l = 0; l < 8; ++l) {
        const int64_t pos = t0 + g + l;
        rows[l] = nullptr;
        if (pos < kv_begin || pos >= kv_end) continue;
        rows[l] = kc.row();
        kc.next();
        any = true;
      }
      if (!any) {
        std::fill(s + g, s + g + 8, -INFINITY);
        continue;
      }
      __m256 dot = _mm256_setzero_ps();
      for (int i = 0; i < d; i += 8) {
        __m256 r[8];
        for (int l = 0; l < 8; ++l) r[l] = rows[l] ? load_h(rows[l] + i) : _mm256_setzero_ps();
        transpose8(r);
        for (int c = 0; c < 8; ++c) dot = _mm256_fmadd_ps(_mm256_set1_ps(q[i + c]), r[c], dot);
      }
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, _mm256_mul_ps(dot, _mm256_set1_ps(scale)));
      for (int l = 0; l < 8; ++l) {
        float x = lanes[l];
        if (p.softcap > 0) x = std::tanh(x) * p.softcap;
        s[g + l] = rows[l] ? x : -INFINITY;
      }
    }
    float tile_max = -INFINITY;
    for (int j = 0; j < kTile; ++j) tile_max = std::max(tile_max, s[j]);
    if (tile_max == -INFINITY) continue;
    const float m_new = std::fmax(M, tile_max);
    if (m_new > M) {
      const float ms = std::exp(M - m_new);
      const __m256 msv = _mm256_set1_ps(ms);
      for (int i = 0; i < d; i += 8) _mm256_store_ps(acc + i, _mm256_mul_ps(_mm256_load_ps(acc + i), msv));
      S *= ms;
    }
    M = m_new;
    S = float(double(S) + tile_exp_sum(s, kTile, m_new));
    for (int j = 0; j < kTile; ++j) {
      const int64_t pos = t0 + j;
      if (pos < kv_begin || pos >= kv_end) continue;  // probability 0: adds nothing
      const uint16_t* vr = vc.row();
      vc.next();
      const __m256 w = _mm256_set1_ps(s[j]);
      for (int i = 0; i < d; i += 8) _mm256_store_ps(acc + i, _mm256_fmadd_ps(load_h(vr + i), w, _mm256_load_ps(acc + i)));
    }
  }
  const float inv = S == 0 ? 0 : 1.0f / S;
  for (int i = 0; i < d; ++i) out[i] = acc[i] * inv;
  return true;
}

}  // namespace

CHASSIS_AVX2 bool attend_one_avx2(const float* q, const KvRows& k, const KvRows& v, int64_t kv_begin, int64_t kv_end,
                                  float* out, const AttentionParams& p) {
  if (k.f32) return false;
  if (p.tiled) return attend_tiled_avx2(q, k, v, kv_begin, kv_end, out, p);
  const int d = p.head_dim;
  if (d % 32 != 0 || d > 256) return false;
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
