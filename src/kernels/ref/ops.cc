// Scalar reference implementations of kernels/ops.h, following llama.cpp's CPU numerics where they
// are observable (double accumulation in RMSNorm, iterative rope angles, f16-rounded GELU).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/fp16.h"
#include "kernels/ops.h"
#include "kernels/ref/elementwise.h"
#include "kernels/ref/expf_poly.h"

namespace chassis {

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += double(x[i] * x[i]);  // float product, double sum (as ggml)
  const float mean = static_cast<float>(sum / double(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = w ? (x[i] * scale) * w[i] : x[i] * scale;
}

void rope(float* x, int n_head, int head_dim, int pos, const RopeParams& p) { rope_body(x, n_head, head_dim, pos, p); }

void f32_to_f16_row(const float* x, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_f16(x[i]);
}

void rope_angles(int pos, const RopeParams& p, float* cs, float* sn) { rope_angles_body(pos, p, cs, sn); }

void rope_rotate(float* x, int n_head, int head_dim, const RopeParams& p, const float* cs, const float* sn) {
  rope_rotate_body(x, n_head, head_dim, p, cs, sn);
}

void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) { swiglu_body(gate, up, out, n); }

namespace {
float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  constexpr float kCoefA = 0.044715f;
  // The inner 1 + a*x*x is one FMA in the reference build.
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * std::fma(kCoefA * x, x, 1.0f)));
}
}  // namespace

void geglu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    float g;
    if (x <= -10.0f) g = 0.0f;
    else if (x >= 10.0f) g = x;
    else g = round_f16(gelu_tanh(round_f16(x)));
    out[i] = g * up[i];
  }
}

void geglu_f32(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gelu_tanh(gate[i]) * up[i];
}

void softcap(float* x, int64_t n, float cap) {
  // As three graph ops in the reference: scale by 1/cap, tanh, scale by cap.
  const float inv = 1.0f / cap;
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i] * inv) * cap;
}

namespace {
// f16 dot product in the summation order of llama.cpp's AVX2 ggml_vec_dot_f16: four 8-lane FMA
// accumulators over steps of 32, then a fixed reduction tree. Matching the order makes attention
// scores bit-identical, which matters because downstream activation rounding (bf16, q8) amplifies
// tiny differences.
float dot_f16_ggml_order(const uint16_t* x, const float* y, int n) {
  float acc[4][8] = {};
  const int np = n & ~31;
  for (int i = 0; i < np; i += 32)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 8; ++l) acc[j][l] = std::fma(f16_to_f32(x[i + j * 8 + l]), y[i + j * 8 + l], acc[j][l]);
  // GGML_F32x8_REDUCE: accumulators (0+2)+(1+3), lanes l and l+4, then two horizontal adds.
  float t[4];
  for (int l = 0; l < 4; ++l) {
    const float lo = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    const float hi = (acc[0][l + 4] + acc[2][l + 4]) + (acc[1][l + 4] + acc[3][l + 4]);
    t[l] = lo + hi;
  }
  double sum = (t[0] + t[1]) + (t[2] + t[3]);
  for (int i = np; i < n; ++i) sum += double(f16_to_f32(x[i]) * y[i]);
  return float(sum);
}
}  // namespace

namespace {
// The tiled kernel for one query row: keys in tiles of 64 from position 0; per tile the scores
// (sequential FMA over the head dimension, f32 q), one max update, exp by the polynomial, the tile's
// probability sum (8-lane groups, summed in double), and V accumulated by sequential FMA in f32.
void attend_tiled(const float* q, const KvRows& k, const KvRows& v, int64_t kv_begin, int64_t kv_end, float* out,
                  const AttentionParams& p) {
  KvRowCursor kc(k, kv_begin), vc(v, kv_begin);
  constexpr int kTile = 64;
  const int d = p.head_dim;
  float scale = p.scale;
  if (p.softcap > 0) scale /= p.softcap;
  float acc[1024] = {};
  float S = 0, M = -INFINITY;
  float s[kTile];
  for (int64_t t0 = kv_begin / kTile * kTile; t0 < kv_end; t0 += kTile) {
    for (int j = 0; j < kTile; ++j) {
      const int64_t pos = t0 + j;
      if (pos < kv_begin || pos >= kv_end) {
        s[j] = -INFINITY;
        continue;
      }
      const uint16_t* kr = kc.row();
      kc.next();
      float dot = 0;
      for (int i = 0; i < d; ++i) dot = std::fma(q[i], f16_to_f32(kr[i]), dot);
      dot *= scale;
      if (p.softcap > 0) dot = std::tanh(dot) * p.softcap;
      s[j] = dot;
    }
    float tile_max = -INFINITY;
    for (int j = 0; j < kTile; ++j) tile_max = std::max(tile_max, s[j]);
    if (tile_max == -INFINITY) continue;
    const float m_new = std::fmax(M, tile_max);
    if (m_new > M) {
      const float ms = std::exp(M - m_new);
      for (int i = 0; i < d; ++i) acc[i] *= ms;
      S *= ms;
    }
    M = m_new;
    S = float(double(S) + tile_exp_sum(s, kTile, m_new));
    for (int j = 0; j < kTile; ++j) {
      const int64_t pos = t0 + j;
      if (pos < kv_begin || pos >= kv_end) continue;  // probability 0: adds nothing
      const uint16_t* vr = vc.row();
      vc.next();
      for (int i = 0; i < d; ++i) acc[i] = std::fma(f16_to_f32(vr[i]), s[j], acc[i]);
    }
  }
  const float inv = S == 0 ? 0 : 1.0f / S;
  for (int i = 0; i < d; ++i) out[i] = acc[i] * inv;
}
}  // namespace

namespace {
// F32 cache: scores by a sequential f32 dot product, online softmax, V accumulated in f32.
void attend_f32(const float* q, const KvRows& k, const KvRows& v, int64_t kv_begin, int64_t kv_end, float* out,
                const AttentionParams& p) {
  const int d = p.head_dim;
  float scale = p.scale;
  if (p.softcap > 0) scale /= p.softcap;
  float acc[1024] = {};
  float S = 0, M = -INFINITY;
  KvRowCursor kc(k, kv_begin), vc(v, kv_begin);
  for (int64_t j = kv_begin; j < kv_end; ++j, kc.next(), vc.next()) {
    const float* kr = reinterpret_cast<const float*>(kc.row());
    float s = 0;
    for (int i = 0; i < d; ++i) s = std::fma(q[i], kr[i], s);
    s *= scale;
    if (p.softcap > 0) s = p.softcap * std::tanh(s);
    float ms = 1.0f, vs = 1.0f;
    if (s > M) {
      ms = std::exp(M - s);
      M = s;
      for (int i = 0; i < d; ++i) acc[i] *= ms;
    } else {
      vs = std::exp(s - M);
    }
    const float* vr = reinterpret_cast<const float*>(vc.row());
    for (int i = 0; i < d; ++i) acc[i] = std::fma(vr[i], vs, acc[i]);
    S = std::fma(S, ms, vs);
  }
  const float inv = S == 0 ? 0 : 1.0f / S;
  for (int i = 0; i < d; ++i) out[i] = acc[i] * inv;
}
}  // namespace

void attend_one(const float* q, const KvRows& k, const KvRows& v, int64_t kv_begin, int64_t kv_end, float* out,
                float* scores, const AttentionParams& p) {
  (void)scores;
  if (k.f32) return attend_f32(q, k, v, kv_begin, kv_end, out, p);
  if (p.tiled) return attend_tiled(q, k, v, kv_begin, kv_end, out, p);
  // llama.cpp's CPU flash attention for an f16 cache: q rounded to f16, scores by an f16 dot product,
  // an online softmax, and the weighted sum of V accumulated in f16.
  const int d = p.head_dim;
  float qh[1024];
  for (int i = 0; i < d; ++i) qh[i] = round_f16(q[i]);
  float scale = p.scale;
  if (p.softcap > 0) scale /= p.softcap;
  uint16_t acc[1024];
  for (int i = 0; i < d; ++i) acc[i] = 0;
  float S = 0, M = -INFINITY;
  KvRowCursor kc(k, kv_begin), vc(v, kv_begin);
  for (int64_t j = kv_begin; j < kv_end; ++j, kc.next(), vc.next()) {
    float s = dot_f16_ggml_order(kc.row(), qh, d) * scale;
    if (p.softcap > 0) s = p.softcap * std::tanh(s);
    const float m_old = M;
    float ms = 1.0f, vs = 1.0f;
    if (s > M) {
      M = s;
      ms = std::exp(m_old - M);
      for (int i = 0; i < d; ++i) acc[i] = f32_to_f16(f16_to_f32(acc[i]) * ms);
    } else {
      vs = std::exp(s - M);
    }
    const uint16_t* vr = vc.row();
    for (int i = 0; i < d; ++i) acc[i] = f32_to_f16(std::fma(f16_to_f32(vr[i]), vs, f16_to_f32(acc[i])));
    S = std::fma(S, ms, vs);  // llama.cpp is built with FP contraction: this line is one FMA there
  }
  const float inv = S == 0 ? 0 : 1.0f / S;
  for (int i = 0; i < d; ++i) out[i] = f16_to_f32(acc[i]) * inv;
}

}  // namespace chassis
