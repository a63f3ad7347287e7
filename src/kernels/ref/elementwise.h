// Bodies of the element-wise reference kernels, in a header so that one source serves twice: as the
// scalar reference (kernels/ref/ops.cc, baseline x86-64, where std::fma is a libm call) and inlined
// into AVX2+FMA builds of the same function (kernels/cpu/ops_avx2.cc, where std::fma is one
// instruction). std::fma rounds once either way and FP contraction is off project-wide, so both give
// the same bits; the tests compare them anyway.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/ops.h"
#include "kernels/ref/expf_poly.h"

namespace chassis {

// cos and sin of each rotated pair's angle at position pos, times YaRN's magnitude: n_rot/2 each.
[[gnu::always_inline]] inline void rope_angles_body(int pos, const RopeParams& p, float* cs, float* sn) {
  const int n_rot = p.n_rot;
  const float theta_scale = std::pow(p.freq_base, -2.0f / float(n_rot));
  const float mscale = p.ext_factor != 0 ? p.attn_factor * (1.0f + 0.1f * std::log(1.0f / p.freq_scale)) : p.attn_factor;
  // The angle is built by repeated multiplication, as ggml does.
  float theta = float(pos);
  for (int i = 0; i < n_rot / 2; ++i) {
    const float ff = p.freq_factors ? p.freq_factors[i] : 1.0f;
    const float extrap = theta / ff;
    float t = p.freq_scale * extrap;
    if (p.ext_factor != 0) {  // YaRN: high-frequency pairs keep their angle, low ones are interpolated
      const float y = (float(i) - p.corr_dims[0]) / std::max(0.001f, p.corr_dims[1] - p.corr_dims[0]);
      const float mix = (1.0f - std::min(1.0f, std::max(0.0f, y))) * p.ext_factor;
      t = t * (1.0f - mix) + extrap * mix;
    }
    cs[i] = std::cos(t) * mscale;
    sn[i] = std::sin(t) * mscale;
    theta *= theta_scale;
  }
}

// Rotates the leading n_rot values of each of n_head heads by the angles' cos and sin.
[[gnu::always_inline]] inline void rope_rotate_body(float* x, int n_head, int head_dim, const RopeParams& p, const float* cs,
                                                    const float* sn) {
  const int n_rot = p.n_rot;
  for (int h = 0; h < n_head; ++h) {
    float* v = x + int64_t(h) * head_dim;
    for (int i = 0; i < n_rot / 2; ++i) {
      const int a = p.style == RopeStyle::Normal ? 2 * i : i;
      const int b = p.style == RopeStyle::Normal ? 2 * i + 1 : i + n_rot / 2;
      const float x0 = v[a], x1 = v[b];
      // One rounding fewer than the plain formula: the reference compiles these lines to FMAs.
      v[a] = std::fma(x0, cs[i], -(x1 * sn[i]));
      v[b] = std::fma(x0, sn[i], x1 * cs[i]);
    }
  }
}

[[gnu::always_inline]] inline void rope_body(float* x, int n_head, int head_dim, int pos, const RopeParams& p) {
  float cs[kMaxRopePairs], sn[kMaxRopePairs];
  rope_angles_body(pos, p, cs, sn);
  rope_rotate_body(x, n_head, head_dim, p, cs, sn);
}

[[gnu::always_inline]] inline void swiglu_body(const float* gate, const float* up, float* out, int64_t n) {
  // The reference evaluates whole 8-lane groups with the polynomial exp and the rest with libm's.
  const int64_t nv = n & ~int64_t(7);
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float e = i < nv ? expf_poly(0.0f - g) : std::exp(-g);
    out[i] = g / (1.0f + e) * up[i];
  }
}

// One 64-key tile of the reference's tiled attention: s[j] = exp(s[j] - m) by the polynomial, in place,
// and the tile's probability sum as the reference forms it (8-lane groups, lanes l and l+4 first,
// then (0+2)+(1+3), the groups summed in double).
[[gnu::always_inline]] inline double tile_exp_sum(float* s, int n, float m) {
  double tile_sum = 0;
  for (int g = 0; g < n; g += 8) {
    float e[8];
    for (int l = 0; l < 8; ++l) e[l] = s[g + l] = expf_poly(s[g + l] - m);
    float r[4];
    for (int l = 0; l < 4; ++l) r[l] = e[l + 4] + e[l];
    tile_sum += (r[0] + r[2]) + (r[1] + r[3]);
  }
  return tile_sum;
}

}  // namespace chassis
