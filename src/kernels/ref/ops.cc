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
  for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
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

void attend_one(const float* q, const uint16_t* k, const uint16_t* v, int64_t stride, int64_t kv_begin,
                int64_t kv_end, float* out, float* scores, const AttentionParams& p) {
  const int d = p.head_dim;
  // The reference rounds q to f16 for the q.k dot product, as it stores K in f16.
  float qh[1024];
  for (int i = 0; i < d; ++i) qh[i] = round_f16(q[i]);
  const int64_t n = kv_end - kv_begin;
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t* kr = k + (kv_begin + j) * stride;
    float s = 0;
    for (int i = 0; i < d; ++i) s += qh[i] * f16_to_f32(kr[i]);
    s *= p.scale;
    if (p.softcap > 0) s = p.softcap * std::tanh(s / p.softcap);
    scores[j] = s;
  }
  softmax(scores, n);
  for (int i = 0; i < d; ++i) out[i] = 0;
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t* vr = v + (kv_begin + j) * stride;
    const float w = scores[j];
    for (int i = 0; i < d; ++i) out[i] += w * f16_to_f32(vr[i]);
  }
}

}  // namespace chassis
