// Scalar reference implementations of kernels/ops.h, following llama.cpp's CPU numerics where they
// are observable (double accumulation in RMSNorm, iterative rope angles, f16-rounded GELU).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/fp16.h"
#include "kernels/ops.h"

namespace chassis {

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += double(x[i] * x[i]);  // float product, double sum (as ggml)
  const float mean = static_cast<float>(sum / double(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = w ? (x[i] * scale) * w[i] : x[i] * scale;
}

void rope(float* x, int n_head, int head_dim, int pos, const RopeParams& p) {
  const int n_rot = p.n_rot;
  const float theta_scale = std::pow(p.freq_base, -2.0f / float(n_rot));
  // cos/sin per rotated pair; the angle is built by repeated multiplication as ggml does.
  float cs[512], sn[512];
  float theta = float(pos);
  for (int i = 0; i < n_rot / 2; ++i) {
    const float ff = p.freq_factors ? p.freq_factors[i] : 1.0f;
    const float t = p.freq_scale * (theta / ff);
    cs[i] = std::cos(t);
    sn[i] = std::sin(t);
    theta *= theta_scale;
  }
  for (int h = 0; h < n_head; ++h) {
    float* v = x + int64_t(h) * head_dim;
    for (int i = 0; i < n_rot / 2; ++i) {
      const int a = p.style == RopeStyle::Normal ? 2 * i : i;
      const int b = p.style == RopeStyle::Normal ? 2 * i + 1 : i + n_rot / 2;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * cs[i] - x1 * sn[i];
      v[b] = x0 * sn[i] + x1 * cs[i];
    }
  }
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

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

namespace {
float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  constexpr float kCoefA = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoefA * x * x)));
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

void softcap(float* x, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
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
  for (int l = 0; l < 8; ++l) {
    acc[0][l] += acc[2][l];
    acc[1][l] += acc[3][l];
    acc[0][l] += acc[1][l];
  }
  // 256 -> 128 bit: lanes l and l+4; then two horizontal adds.
  float t[4];
  for (int l = 0; l < 4; ++l) t[l] = acc[0][l] + acc[0][l + 4];
  const float h0 = t[0] + t[1], h1 = t[2] + t[3];
  double sum = h0 + h1;
  for (int i = np; i < n; ++i) sum += double(f16_to_f32(x[i]) * y[i]);
  return float(sum);
}
}  // namespace

void attend_one(const float* q, const uint16_t* k, const uint16_t* v, int64_t stride, int64_t kv_begin,
                int64_t kv_end, float* out, float* scores, const AttentionParams& p) {
  // llama.cpp's CPU flash attention for an f16 cache: q rounded to f16, scores by an f16 dot product,
  // an online softmax, and the weighted sum of V accumulated in f16.
  (void)scores;
  const int d = p.head_dim;
  float qh[1024];
  for (int i = 0; i < d; ++i) qh[i] = round_f16(q[i]);
  float scale = p.scale;
  if (p.softcap > 0) scale /= p.softcap;
  uint16_t acc[1024];
  for (int i = 0; i < d; ++i) acc[i] = 0;
  float S = 0, M = -INFINITY;
  for (int64_t j = kv_begin; j < kv_end; ++j) {
    float s = dot_f16_ggml_order(k + j * stride, qh, d) * scale;
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
    const uint16_t* vr = v + j * stride;
    for (int i = 0; i < d; ++i) acc[i] = f32_to_f16(std::fma(f16_to_f32(vr[i]), vs, f16_to_f32(acc[i])));
    S = S * ms + vs;
  }
  const float inv = S == 0 ? 0 : 1.0f / S;
  for (int i = 0; i < d; ++i) out[i] = f16_to_f32(acc[i]) * inv;
}

}  // namespace chassis
