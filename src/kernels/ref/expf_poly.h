// exp(x) by range reduction to [-ln2/2, ln2/2] and a degree-5 polynomial, exactly as llama.cpp's
// vectorized SiLU evaluates it (its ggml_v_expf, after ARM's optimized-routines expf), so that our
// activations are bit-identical. Accurate to about 1.5 ulp; huge |x| handled as the reference does.
//
// In a header so that SIMD kernels compiled for an FMA target get the same function with std::fma
// as one instruction (a baseline x86-64 build calls libm's fmaf, which rounds identically).
#pragma once
#include <cmath>
#include <cstdint>

#include "core/fp16.h"

namespace chassis {

inline float expf_poly(float x) {
  const float shifter = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, shifter);  // x / ln2, rounded to an integer in the low bits
  const float n = z - shifter;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));  // x - n*ln2 in two parts
  const uint32_t e = f32_to_bits(z) << 23;
  const float k = bits_to_f32(e + f32_to_bits(1.0f));  // 2^n
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, 0x1.ffffecp-1f * b);  // exp(b) - 1
  if (!(std::fabs(n) > 126.0f)) return std::fma(j, k, k);
  const uint32_t g = n <= 0 ? 0x82000000u : 0u;  // 2^n does not fit: scale in two steps
  const float s1 = bits_to_f32(g + 0x7f000000u);
  const float s2 = bits_to_f32(e - g);
  if (std::fabs(n) > 192.0f) return s1 * s1;
  return std::fma(s2, j, s2) * s1;
}

}  // namespace chassis
