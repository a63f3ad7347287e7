// Reference dot products of a weight row with encoded activations, for every weight type.
//
// Why the summation order is spelled out: llama.cpp (the reference our goldens come from) computes
// these on x86 with 8-lane AVX2 accumulators, integer partial sums per 4 bytes, and a fixed
// horizontal reduction. Tiny golden models with peaky logits turn a 1-ulp difference into a
// different token a few steps later, so "mathematically equal" is not enough: the reference here
// reproduces the same float operations in the same order, in plain scalar code. Integer partial
// sums are exact, so only the float steps (which lanes, which FMA, which reduction tree) matter.
// Each weight type follows the kernel llama.cpp's CPU backend selects for it on AVX2:
//   F32/F16/BF16  single row: ggml_vec_dot_*; batch: llamafile tinyBLAS (one 8-lane FMA accumulator)
//   Q8_0, Q5_0    8 lanes of 4-byte integer sums, FMA with d_w*d_a per block (vec_dot and tinyBLAS agree)
//   Q4_1, Q5_1    as Q8_0 plus the minimum term accumulated separately through the activation sums
//   Q4_0, Q4_K    the repacked 8x8 kernels: one integer sum per block, FMA per block in order
//   Q2_K..Q6_K    ggml_vec_dot_qX_K_q8_K: per-lane integer sums over a super-block, FMA with d
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/quants.h"

namespace chassis {
namespace {

// hsum_float_8 (quant kernels, tinyBLAS): lanes l and l+4 first, then (0+2) + (1+3).
float hsum8(const float a[8]) {
  float r[4];
  for (int l = 0; l < 4; ++l) r[l] = a[l + 4] + a[l];
  return (r[0] + r[2]) + (r[1] + r[3]);
}

// GGML_F32x8_REDUCE's last steps (vec_dot_f32/_f16): lanes l and l+4, then two horizontal adds,
// which pair (0+1) and (2+3) -- a different tree from hsum8.
float hadd_reduce8(const float a[8]) {
  float t[4];
  for (int l = 0; l < 4; ++l) t[l] = a[l] + a[l + 4];
  return (t[0] + t[1]) + (t[2] + t[3]);
}

// ggml_vec_dot_f32/_f16: four 8-lane FMA accumulators over steps of 32, combined lane-wise as
// (0+2)+(1+3), then hadd_reduce8; elements past the last full step are added one by one (for f32
// as a separate multiply and add: the reference does not fuse that loop).
template <typename W, typename A>
float dot_4x8(const W* w, const A* a, int64_t n, bool tail_in_double) {
  float acc[4][8] = {};
  const int64_t np = n & ~int64_t(31);
  for (int64_t i = 0; i < np; i += 32)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 8; ++l) acc[j][l] = std::fma(float(w[i + j * 8 + l]), float(a[i + j * 8 + l]), acc[j][l]);
  float c[8];
  for (int l = 0; l < 8; ++l) c[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
  if (tail_in_double) {
    double sum = hadd_reduce8(c);
    for (int64_t i = np; i < n; ++i) sum += double(float(w[i]) * float(a[i]));
    return float(sum);
  }
  float sum = hadd_reduce8(c);
  for (int64_t i = np; i < n; ++i) sum += float(w[i]) * float(a[i]);
  return sum;
}

// llamafile tinyBLAS: one 8-lane FMA accumulator per output over steps of 8, then hsum8.
template <typename W, typename A>
float dot_8lane(const W* w, const A* a, int64_t n) {
  float acc[8] = {};
  for (int64_t i = 0; i < n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] = std::fma(float(w[i + l]), float(a[i + l]), acc[l]);
  return hsum8(acc);
}

// Element wrappers so the templates above read f16/bf16 storage as floats.
struct Half { uint16_t v; operator float() const { return f16_to_f32(v); } };
struct BHalf { uint16_t v; operator float() const { return bf16_to_f32(v); } };

// ggml_vec_dot_bf16 (AVX2): four 8-lane mul-then-add accumulators, combined (c1+c3)+(c2+c4), hsum8.
float dot_bf16_single(const BHalf* w, const BHalf* a, int64_t n) {
  float c[4][8] = {};
  const int64_t np = n & ~int64_t(31);
  for (int64_t i = 0; i < np; i += 32)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 8; ++l) c[j][l] = float(w[i + j * 8 + l]) * float(a[i + j * 8 + l]) + c[j][l];
  float s[8];
  for (int l = 0; l < 8; ++l) s[l] = (c[0][l] + c[2][l]) + (c[1][l] + c[3][l]);
  double sum = hsum8(s);
  for (int64_t i = np; i < n; ++i) sum += double(float(w[i]) * float(a[i]));
  return float(sum);
}

// Sum of products of 4 consecutive int8 pairs: the 8 integer lanes of a 32-byte AVX2 dot.
void lane_sums(const int8_t* w, const int8_t* a, int32_t out[8]) {
  for (int l = 0; l < 8; ++l) {
    int32_t s = 0;
    for (int e = 4 * l; e < 4 * l + 4; ++e) s += int32_t(w[e]) * int32_t(a[e]);
    out[l] = s;
  }
}

// Signed quants of the 32-element blocks (values as the kernels see them after unpacking).
void unpack(const BlockQ8_0& b, int8_t q[QK]) { std::memcpy(q, b.qs, QK); }
void unpack(const BlockQ4_0& b, int8_t q[QK]) {
  for (int j = 0; j < QK / 2; ++j) {
    q[j] = int8_t((b.qs[j] & 0xF) - 8);
    q[j + QK / 2] = int8_t((b.qs[j] >> 4) - 8);
  }
}
void unpack(const BlockQ4_1& b, int8_t q[QK]) {
  for (int j = 0; j < QK / 2; ++j) {
    q[j] = int8_t(b.qs[j] & 0xF);
    q[j + QK / 2] = int8_t(b.qs[j] >> 4);
  }
}
template <typename B>
void unpack5(const B& b, int8_t q[QK], int offset) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  for (int j = 0; j < QK / 2; ++j) {
    q[j] = int8_t(((b.qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - offset);
    q[j + QK / 2] = int8_t(((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - offset);
  }
}

// Q8_0, Q5_0 (and Q4_0 without repacking): acc_lane = fma(d_w*d_a, lanesum, acc_lane), hsum8.
template <typename B>
float dot_lanes_q8_0(const B* w, const BlockQ8_0* a, int64_t nb, int q5_offset) {
  float acc[8] = {};
  int8_t q[QK];
  int32_t ls[8];
  for (int64_t b = 0; b < nb; ++b) {
    if constexpr (std::is_same_v<B, BlockQ5_0>) unpack5(w[b], q, q5_offset);
    else unpack(w[b], q);
    lane_sums(q, a[b].qs, ls);
    const float d = f16_to_f32(w[b].d) * f16_to_f32(a[b].d);
    for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, float(ls[l]), acc[l]);
  }
  return hsum8(acc);
}

// Q4_1, Q5_1 against Q8_1: lanes as above, plus sum(m * s) kept apart and added at the end.
template <typename B>
float dot_lanes_q8_1(const B* w, const BlockQ8_1* a, int64_t nb) {
  float acc[8] = {}, mins = 0;
  int8_t q[QK];
  int32_t ls[8];
  for (int64_t b = 0; b < nb; ++b) {
    if constexpr (std::is_same_v<B, BlockQ5_1>) unpack5(w[b], q, 0);
    else unpack(w[b], q);
    mins = std::fma(f16_to_f32(w[b].m), f16_to_f32(a[b].s), mins);
    lane_sums(q, a[b].qs, ls);
    const float d = f16_to_f32(w[b].d) * f16_to_f32(a[b].d);
    for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, float(ls[l]), acc[l]);
  }
  return hsum8(acc) + mins;
}

// Repacked Q4_0 (8x8 kernels): one exact integer sum per block, FMA per block in order.
float dot_q4_0_repacked(const BlockQ4_0* w, const BlockQ8_0* a, int64_t nb) {
  float acc = 0;
  int8_t q[QK];
  for (int64_t b = 0; b < nb; ++b) {
    unpack(w[b], q);
    int32_t s = 0;
    for (int e = 0; e < QK; ++e) s += int32_t(q[e]) * a[b].qs[e];
    acc = std::fma(float(s), f16_to_f32(w[b].d) * f16_to_f32(a[b].d), acc);
  }
  return acc;
}

// ---- k-quants: element values and scales straight from the block layouts ----

// Q2_K: unsigned 2-bit value and 4-bit scale of element e (0..255).
int q2k_value(const BlockQ2_K& b, int e) { return (b.qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

int q3k_value(const BlockQ3_K& b, int e) {
  const int low = (b.qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
  const int high_set = (b.hmask[e % 32] >> (e / 32)) & 1;
  return low - (high_set ? 0 : 4);
}

int q4k_value(const BlockQ4_K& b, int e) {
  const uint8_t byte = b.qs[(e / 64) * 32 + e % 32];
  return ((e / 32) % 2 == 0) ? (byte & 0xF) : (byte >> 4);
}
int q5k_value(const BlockQ5_K& b, int e) {
  const uint8_t byte = b.qs[(e / 64) * 32 + e % 32];
  const int lo = ((e / 32) % 2 == 0) ? (byte & 0xF) : (byte >> 4);
  return lo | (((b.qh[e % 32] >> (e / 32)) & 1) << 4);
}
// Q6_K unsigned 6-bit value (0..63, the -32 offset is applied through the activation sums).
int q6k_value(const BlockQ6_K& b, int e) {
  const int h = e / 128, k = (e % 128) / 32, l = e % 32;
  const uint8_t qlb = b.ql[h * 64 + (k % 2) * 32 + l];
  const int lo = k < 2 ? (qlb & 0xF) : (qlb >> 4);
  const int hi = (b.qh[h * 32 + l] >> (2 * k)) & 3;
  return lo | (hi << 4);
}

// Lane of element e in the 8-lane integer accumulator: 4-byte groups of each 32-element vector.
inline int lane_of(int e) { return (e % 32) / 4; }

float dot_q2_k(const BlockQ2_K* w, const BlockQ8_K* a, int64_t nb) {
  float acc[8] = {};
  for (int64_t i = 0; i < nb; ++i) {
    const float d = a[i].d * f16_to_f32(w[i].d);
    const float dmin = -a[i].d * f16_to_f32(w[i].dmin);
    for (int l = 0; l < 8; ++l) {
      const int32_t prod = (w[i].scales[2 * l] >> 4) * a[i].bsums[2 * l] + (w[i].scales[2 * l + 1] >> 4) * a[i].bsums[2 * l + 1];
      acc[l] = std::fma(dmin, float(prod), acc[l]);
    }
    int32_t sumi[8] = {};
    for (int e = 0; e < QK_K; ++e) sumi[lane_of(e)] += (w[i].scales[e / 16] & 0xF) * q2k_value(w[i], e) * a[i].qs[e];
    for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, float(sumi[l]), acc[l]);
  }
  return hsum8(acc);
}

float dot_q3_k(const BlockQ3_K* w, const BlockQ8_K* a, int64_t nb) {
  float acc[8] = {};
  for (int64_t i = 0; i < nb; ++i) {
    const float d = a[i].d * f16_to_f32(w[i].d);
    int32_t sumi[8] = {};
    for (int e = 0; e < QK_K; ++e) sumi[lane_of(e)] += q3k_scale(w[i].scales, e / 16) * q3k_value(w[i], e) * a[i].qs[e];
    for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, float(sumi[l]), acc[l]);
  }
  return hsum8(acc);
}

// Repacked Q4_K (8x8 kernels): integer sums for the scaled quants and for the mins, each FMA'd into
// its own accumulator, the result their difference. The single-row kernel (gemv) flushes the
// integer sums once per super-block, the 4-row kernel (gemm) once per pair of 32-element sub-blocks.
float dot_q4_k_repacked(const BlockQ4_K* w, const BlockQ8_K* a, int64_t nb, bool gemm) {
  float acc = 0, acc_min = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const float d = f16_to_f32(w[i].d) * a[i].d;
    const float dmin = f16_to_f32(w[i].dmin) * a[i].d;
    int32_t isum = 0, imin = 0;
    for (int sb = 0; sb < 8; ++sb) {
      int sc, mn;
      k4_scale_min(w[i].scales, sb, sc, mn);
      int32_t dot = 0;
      for (int e = sb * 32; e < sb * 32 + 32; ++e) dot += q4k_value(w[i], e) * a[i].qs[e];
      isum += sc * dot;
      imin += mn * (a[i].bsums[2 * sb] + a[i].bsums[2 * sb + 1]);
      if (gemm && sb % 2 == 1) {
        acc = std::fma(float(isum), d, acc);
        acc_min = std::fma(float(imin), dmin, acc_min);
        isum = imin = 0;
      }
    }
    if (!gemm) {
      acc = std::fma(float(isum), d, acc);
      acc_min = std::fma(float(imin), dmin, acc_min);
    }
  }
  return acc - acc_min;
}

float dot_q5_k(const BlockQ5_K* w, const BlockQ8_K* a, int64_t nb) {
  float acc[8] = {}, mins = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const float d = a[i].d * f16_to_f32(w[i].d);
    const float dmin = -a[i].d * f16_to_f32(w[i].dmin);
    int32_t msum = 0;
    int sc[8], mn[8];
    for (int sb = 0; sb < 8; ++sb) {
      k4_scale_min(w[i].scales, sb, sc[sb], mn[sb]);
      msum += mn[sb] * (a[i].bsums[2 * sb] + a[i].bsums[2 * sb + 1]);
    }
    mins = std::fma(dmin, float(msum), mins);
    int32_t sumi[8] = {};
    for (int e = 0; e < QK_K; ++e) sumi[lane_of(e)] += sc[e / 32] * q5k_value(w[i], e) * a[i].qs[e];
    for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, float(sumi[l]), acc[l]);
  }
  return hsum8(acc) + mins;
}

float dot_q6_k(const BlockQ6_K* w, const BlockQ8_K* a, int64_t nb) {
  float acc[8] = {};
  for (int64_t i = 0; i < nb; ++i) {
    const float d = a[i].d * f16_to_f32(w[i].d);
    int32_t sumi[8] = {};
    for (int e = 0; e < QK_K; ++e) sumi[lane_of(e)] += w[i].scales[e / 16] * q6k_value(w[i], e) * a[i].qs[e];
    // the -32 offset: 32 * sum(scale * activation sum) per pair of 16-element groups
    for (int l = 0; l < 8; ++l)
      sumi[l] -= 32 * (a[i].bsums[2 * l] * w[i].scales[2 * l] + a[i].bsums[2 * l + 1] * w[i].scales[2 * l + 1]);
    for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, float(sumi[l]), acc[l]);
  }
  return hsum8(acc);
}

template <typename T>
const T* as(const void* p) { return static_cast<const T*>(p); }

}  // namespace

float vec_dot(DType wt, const void* w, const void* act, int64_t n, int64_t batch_rows, int64_t row) {
  // tinyBLAS handles batches only when the row length is a multiple of its 8-wide step; repacked
  // kernels take rows four at a time, the remainder goes through the single-row kernel.
  const auto [tiny_blas, repack_gemm] = dot_variant(n, batch_rows, row);
  switch (wt) {
    case DType::F32:
      return tiny_blas ? dot_8lane(as<float>(w), as<float>(act), n) : dot_4x8(as<float>(w), as<float>(act), n, false);
    case DType::F16:
      return tiny_blas ? dot_8lane(as<Half>(w), as<Half>(act), n) : dot_4x8(as<Half>(w), as<Half>(act), n, true);
    case DType::BF16:
      return tiny_blas ? dot_8lane(as<BHalf>(w), as<BHalf>(act), n) : dot_bf16_single(as<BHalf>(w), as<BHalf>(act), n);
    case DType::Q8_0: return dot_lanes_q8_0(as<BlockQ8_0>(w), as<BlockQ8_0>(act), n / QK, 0);
    case DType::Q5_0: return dot_lanes_q8_0(as<BlockQ5_0>(w), as<BlockQ8_0>(act), n / QK, 16);
    case DType::Q4_0: return dot_q4_0_repacked(as<BlockQ4_0>(w), as<BlockQ8_0>(act), n / QK);
    case DType::Q4_1: return dot_lanes_q8_1(as<BlockQ4_1>(w), as<BlockQ8_1>(act), n / QK);
    case DType::Q5_1: return dot_lanes_q8_1(as<BlockQ5_1>(w), as<BlockQ8_1>(act), n / QK);
    case DType::Q2_K: return dot_q2_k(as<BlockQ2_K>(w), as<BlockQ8_K>(act), n / QK_K);
    case DType::Q3_K: return dot_q3_k(as<BlockQ3_K>(w), as<BlockQ8_K>(act), n / QK_K);
    case DType::Q4_K: return dot_q4_k_repacked(as<BlockQ4_K>(w), as<BlockQ8_K>(act), n / QK_K, repack_gemm);
    case DType::Q5_K: return dot_q5_k(as<BlockQ5_K>(w), as<BlockQ8_K>(act), n / QK_K);
    case DType::Q6_K: return dot_q6_k(as<BlockQ6_K>(w), as<BlockQ8_K>(act), n / QK_K);
    default: break;
  }
  throw Error("vec_dot: no dot product for weight type " + std::string(dtype_name(wt)));
}

}  // namespace chassis
