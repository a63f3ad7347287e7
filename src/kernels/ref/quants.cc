// Scalar reference versions of every block format: plain loops written from the format definitions.
#include "kernels/quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/fp16.h"

namespace chassis {
namespace {

// Round half to even, as the hardware rounding mode used by llama.cpp's x86 quantizers.
inline int nearest_int(float x) { return static_cast<int>(std::nearbyint(x)); }


void dequant_q4_0(const BlockQ4_0* b, float* y) {
  const float d = f16_to_f32(b->d);
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = ((b->qs[j] & 0xF) - 8) * d;
    y[j + QK / 2] = ((b->qs[j] >> 4) - 8) * d;
  }
}

void dequant_q4_1(const BlockQ4_1* b, float* y) {
  const float d = f16_to_f32(b->d), m = f16_to_f32(b->m);
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = (b->qs[j] & 0xF) * d + m;
    y[j + QK / 2] = (b->qs[j] >> 4) * d + m;
  }
}

void dequant_q5_0(const BlockQ5_0* b, float* y) {
  const float d = f16_to_f32(b->d);
  uint32_t qh;
  std::memcpy(&qh, b->qh, 4);
  for (int j = 0; j < QK / 2; ++j) {
    const int hi0 = (qh >> j) & 1, hi1 = (qh >> (j + 16)) & 1;
    y[j] = (((b->qs[j] & 0xF) | (hi0 << 4)) - 16) * d;
    y[j + QK / 2] = (((b->qs[j] >> 4) | (hi1 << 4)) - 16) * d;
  }
}

void dequant_q5_1(const BlockQ5_1* b, float* y) {
  const float d = f16_to_f32(b->d), m = f16_to_f32(b->m);
  uint32_t qh;
  std::memcpy(&qh, b->qh, 4);
  for (int j = 0; j < QK / 2; ++j) {
    const int hi0 = (qh >> j) & 1, hi1 = (qh >> (j + 16)) & 1;
    y[j] = ((b->qs[j] & 0xF) | (hi0 << 4)) * d + m;
    y[j + QK / 2] = ((b->qs[j] >> 4) | (hi1 << 4)) * d + m;
  }
}

void dequant_q8_0(const BlockQ8_0* b, float* y) {
  const float d = f16_to_f32(b->d);
  for (int j = 0; j < QK; ++j) y[j] = b->qs[j] * d;
}

void dequant_q8_1(const BlockQ8_1* b, float* y) {
  const float d = f16_to_f32(b->d);
  for (int j = 0; j < QK; ++j) y[j] = b->qs[j] * d;
}

// Q2_K: 16 sub-blocks of 16; 2-bit quants; each sub-block has a 4-bit scale and 4-bit min.
void dequant_q2_k(const BlockQ2_K* b, float* y) {
  const float d = f16_to_f32(b->d), dmin = f16_to_f32(b->dmin);
  const uint8_t* q = b->qs;
  int is = 0;
  for (int n = 0; n < QK_K; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const uint8_t sc = b->scales[is++];
        const float dl = d * (sc & 0xF), ml = dmin * (sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * ((q[l + 16 * half] >> shift) & 3) - ml;
      }
    }
    q += 32;
  }
}

// Q3_K: 2 low bits in qs, the third bit in hmask (set = no offset, clear = -4); 6-bit signed scales.
void dequant_q3_k(const BlockQ3_K* b, float* y) {
  const float d_all = f16_to_f32(b->d);
  int8_t scales[16];
  for (int j = 0; j < 16; ++j) scales[j] = static_cast<int8_t>(q3k_scale(b->scales, j));
  const uint8_t* q = b->qs;
  uint8_t m = 1;
  int is = 0;
  for (int n = 0; n < QK_K; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const float dl = d_all * scales[is++];
        for (int l = 0; l < 16; ++l) {
          const int idx = l + 16 * half;
          *y++ = dl * (((q[idx] >> shift) & 3) - ((b->hmask[idx] & m) ? 0 : 4));
        }
      }
      m <<= 1;
    }
    q += 32;
  }
}

// Q4_K: 8 sub-blocks of 32; 6-bit scales and mins.
void dequant_q4_k(const BlockQ4_K* b, float* y) {
  const float d = f16_to_f32(b->d), dmin = f16_to_f32(b->dmin);
  const uint8_t* q = b->qs;
  for (int j = 0, is = 0; j < QK_K; j += 64, is += 2) {
    int sc, m;
    k4_scale_min(b->scales, is, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    k4_scale_min(b->scales, is + 1, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    q += 32;
  }
}

// Q5_K: Q4_K plus a fifth bit per quant in qh.
void dequant_q5_k(const BlockQ5_K* b, float* y) {
  const float d = f16_to_f32(b->d), dmin = f16_to_f32(b->dmin);
  const uint8_t* ql = b->qs;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < QK_K; j += 64, is += 2) {
    int sc, m;
    k4_scale_min(b->scales, is, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    k4_scale_min(b->scales, is + 1, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + ((b->qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + ((b->qh[l] & u2) ? 16 : 0)) - m2;
    ql += 32;
    u1 <<= 2;
    u2 <<= 2;
  }
}

// Q6_K: 4 low bits in ql, 2 high bits in qh, 8-bit signed scales per 16 elements.
void dequant_q6_k(const BlockQ6_K* b, float* y) {
  const float d = f16_to_f32(b->d);
  const uint8_t* ql = b->ql;
  const uint8_t* qh = b->qh;
  const int8_t* sc = b->scales;
  for (int n = 0; n < QK_K; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * sc[is] * q1;
      y[l + 32] = d * sc[is + 2] * q2;
      y[l + 64] = d * sc[is + 4] * q3;
      y[l + 96] = d * sc[is + 6] * q4;
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

void dequant_q8_k(const BlockQ8_K* b, float* y) {
  for (int j = 0; j < QK_K; ++j) y[j] = b->d * b->qs[j];
}

template <typename Block, void (*F)(const Block*, float*)>
void dequant_blocks(const void* src, float* dst, int64_t n, int64_t bs) {
  const auto* b = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / bs; ++i) F(b + i, dst + i * bs);
}

// ---- quantizers ----

void quant_q8_0(const float* x, BlockQ8_0* y) {
  float amax = 0;
  for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.f;
  const float id = amax != 0 ? 127.f / amax : 0.f;
  y->d = f32_to_f16(d);
  for (int j = 0; j < QK; ++j) y->qs[j] = static_cast<int8_t>(nearest_int(x[j] * id));
}

void quant_q8_1(const float* x, BlockQ8_1* y) {
  float amax = 0;
  for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.f;
  const float id = amax != 0 ? 127.f / amax : 0.f;
  int sum = 0;
  for (int j = 0; j < QK; ++j) {
    y->qs[j] = static_cast<int8_t>(nearest_int(x[j] * id));
    sum += y->qs[j];
  }
  y->d = f32_to_f16(d);
  y->s = f32_to_f16(d * static_cast<float>(sum));
}

void quant_q8_k(const float* x, BlockQ8_K* y) {
  float amax = 0, max = 0;
  for (int j = 0; j < QK_K; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax == 0) {
    std::memset(y, 0, sizeof(*y));
    return;
  }
  const float iscale = -127.f / max;
  for (int j = 0; j < QK_K; ++j) y->qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
  for (int j = 0; j < QK_K / 16; ++j) {
    int s = 0;
    for (int l = 0; l < 16; ++l) s += y->qs[j * 16 + l];
    y->bsums[j] = static_cast<int16_t>(s);
  }
  y->d = 1 / iscale;
}

// Signed extreme of a block (the value with the largest magnitude): symmetric quantizers map it to -8/-16.
float signed_max(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

void quant_q4_0(const float* x, BlockQ4_0* y) {
  const float d = signed_max(x, QK) / -8;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  y->d = f32_to_f16(d);
  for (int j = 0; j < QK / 2; ++j) {
    const int a = std::min(15, static_cast<int>(x[j] * id + 8.5f));
    const int b = std::min(15, static_cast<int>(x[j + QK / 2] * id + 8.5f));
    y->qs[j] = static_cast<uint8_t>(a | (b << 4));
  }
}

void quant_q4_1(const float* x, BlockQ4_1* y) {
  float mn = x[0], mx = x[0];
  for (int j = 1; j < QK; ++j) { mn = std::min(mn, x[j]); mx = std::max(mx, x[j]); }
  const float d = (mx - mn) / 15;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  y->d = f32_to_f16(d);
  y->m = f32_to_f16(mn);
  for (int j = 0; j < QK / 2; ++j) {
    const int a = std::min(15, static_cast<int>((x[j] - mn) * id + 0.5f));
    const int b = std::min(15, static_cast<int>((x[j + QK / 2] - mn) * id + 0.5f));
    y->qs[j] = static_cast<uint8_t>(a | (b << 4));
  }
}

void quant_q5_0(const float* x, BlockQ5_0* y) {
  const float d = signed_max(x, QK) / -16;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  y->d = f32_to_f16(d);
  uint32_t qh = 0;
  for (int j = 0; j < QK / 2; ++j) {
    const int a = std::min(31, static_cast<int>(x[j] * id + 16.5f));
    const int b = std::min(31, static_cast<int>(x[j + QK / 2] * id + 16.5f));
    y->qs[j] = static_cast<uint8_t>((a & 0xF) | ((b & 0xF) << 4));
    qh |= uint32_t((a >> 4) & 1) << j;
    qh |= uint32_t((b >> 4) & 1) << (j + 16);
  }
  std::memcpy(y->qh, &qh, 4);
}

void quant_q5_1(const float* x, BlockQ5_1* y) {
  float mn = x[0], mx = x[0];
  for (int j = 1; j < QK; ++j) { mn = std::min(mn, x[j]); mx = std::max(mx, x[j]); }
  const float d = (mx - mn) / 31;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  y->d = f32_to_f16(d);
  y->m = f32_to_f16(mn);
  uint32_t qh = 0;
  for (int j = 0; j < QK / 2; ++j) {
    const int a = std::min(31, static_cast<int>((x[j] - mn) * id + 0.5f));
    const int b = std::min(31, static_cast<int>((x[j + QK / 2] - mn) * id + 0.5f));
    y->qs[j] = static_cast<uint8_t>((a & 0xF) | ((b & 0xF) << 4));
    qh |= uint32_t((a >> 4) & 1) << j;
    qh |= uint32_t((b >> 4) & 1) << (j + 16);
  }
  std::memcpy(y->qh, &qh, 4);
}

template <typename Block, void (*F)(const float*, Block*)>
void quant_blocks(const float* src, void* dst, int64_t n, int64_t bs) {
  auto* b = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / bs; ++i) F(src + i * bs, b + i);
}

}  // namespace

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  switch (t) {
    case DType::F32: std::memcpy(dst, src, n * sizeof(float)); return;
    case DType::F16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::BF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::Q4_0: return dequant_blocks<BlockQ4_0, dequant_q4_0>(src, dst, n, QK);
    case DType::Q4_1: return dequant_blocks<BlockQ4_1, dequant_q4_1>(src, dst, n, QK);
    case DType::Q5_0: return dequant_blocks<BlockQ5_0, dequant_q5_0>(src, dst, n, QK);
    case DType::Q5_1: return dequant_blocks<BlockQ5_1, dequant_q5_1>(src, dst, n, QK);
    case DType::Q8_0: return dequant_blocks<BlockQ8_0, dequant_q8_0>(src, dst, n, QK);
    case DType::Q8_1: return dequant_blocks<BlockQ8_1, dequant_q8_1>(src, dst, n, QK);
    case DType::Q2_K: return dequant_blocks<BlockQ2_K, dequant_q2_k>(src, dst, n, QK_K);
    case DType::Q3_K: return dequant_blocks<BlockQ3_K, dequant_q3_k>(src, dst, n, QK_K);
    case DType::Q4_K: return dequant_blocks<BlockQ4_K, dequant_q4_k>(src, dst, n, QK_K);
    case DType::Q5_K: return dequant_blocks<BlockQ5_K, dequant_q5_k>(src, dst, n, QK_K);
    case DType::Q6_K: return dequant_blocks<BlockQ6_K, dequant_q6_k>(src, dst, n, QK_K);
    case DType::Q8_K: return dequant_blocks<BlockQ8_K, dequant_q8_k>(src, dst, n, QK_K);
  }
  throw Error("dequantize: unsupported type " + std::string(dtype_name(t)));
}

bool can_quantize(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::Q8_0: case DType::Q8_1: case DType::Q8_K:
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q4_K: case DType::Q5_K:
    case DType::Q6_K: return true;
    default: return false;
  }
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  switch (t) {
    case DType::F32: std::memcpy(dst, src, n * sizeof(float)); return;
    case DType::F16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
      return;
    }
    case DType::BF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::Q8_0: return quant_blocks<BlockQ8_0, quant_q8_0>(src, dst, n, QK);
    case DType::Q8_1: return quant_blocks<BlockQ8_1, quant_q8_1>(src, dst, n, QK);
    case DType::Q8_K: return quant_blocks<BlockQ8_K, quant_q8_k>(src, dst, n, QK_K);
    case DType::Q4_0: return quant_blocks<BlockQ4_0, quant_q4_0>(src, dst, n, QK);
    case DType::Q4_1: return quant_blocks<BlockQ4_1, quant_q4_1>(src, dst, n, QK);
    case DType::Q5_0: return quant_blocks<BlockQ5_0, quant_q5_0>(src, dst, n, QK);
    case DType::Q5_1: return quant_blocks<BlockQ5_1, quant_q5_1>(src, dst, n, QK);
    case DType::Q4_K: return quant_blocks<BlockQ4_K, quantize_block_q4_k>(src, dst, n, QK_K);
    case DType::Q5_K: return quant_blocks<BlockQ5_K, quantize_block_q5_k>(src, dst, n, QK_K);
    case DType::Q6_K: return quant_blocks<BlockQ6_K, quantize_block_q6_k>(src, dst, n, QK_K);
    default: break;
  }
  throw Error("quantize: no quantizer for type " + std::string(dtype_name(t)));
}

}  // namespace chassis
