// Quantized block layouts (byte-compatible with ggml/GGUF) and the scalar reference conversions:
// dequantize any supported weight type, quantize activations to a weight's vec_dot_type, and the
// reference dot product of a weight row with quantized activations. These are the oracle that
// faster kernels are tested against.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace chassis {

// Each block: `d` is an fp16 scale, `m`/`dmin` an fp16 minimum, `qs` packed quants.
struct BlockQ4_0 { uint16_t d; uint8_t qs[QK / 2]; };
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[QK / 2]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; };
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[QK]; };
struct BlockQ8_1 { uint16_t d, s; int8_t qs[QK]; };  // s = d * sum(qs)
// k-quants: 256-element super-blocks of 16 or 8 sub-blocks with quantized scales.
struct BlockQ2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; };
struct BlockQ3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; };
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; };
struct BlockQ5_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
struct BlockQ6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; };
struct BlockQ8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

// The 6-bit scale and min of sub-block j (0..7) from a Q4_K/Q5_K block's 12-byte scale array.
inline void k4_scale_min(const uint8_t* q, int j, int& sc, int& mn) {
  if (j < 4) {
    sc = q[j] & 63;
    mn = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// The signed 6-bit scale of sub-block j (0..15) of a Q3_K block: low 4 bits in bytes 0..7 (nibble
// j/8), high 2 bits in bytes 8..11.
inline int q3k_scale(const uint8_t* scales, int j) {
  const int lo = j < 8 ? (scales[j] & 0xF) : (scales[j - 8] >> 4);
  const int hi = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

// dst[0..n) = values of a row of n elements stored as type t. n is a multiple of the block size.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);

// Encodes n floats as type t. Supported: F32, F16, BF16, Q8_0, Q8_1, Q8_K (activation types, rounding
// as llama.cpp's x86 build does) and Q4_0, Q4_1, Q5_0, Q5_1 (round-to-nearest weight quantizers).
void quantize_row(DType t, const float* src, void* dst, int64_t n);
// One 256-value super-block with llama.cpp's reference k-quant weight quantizers.
void quantize_block_q4_k(const float* x, BlockQ4_K* y);
void quantize_block_q5_k(const float* x, BlockQ5_K* y);
void quantize_block_q6_k(const float* x, BlockQ6_K* y);
bool can_quantize(DType t);

// Dot product of a row of weights (type wt) with activations already encoded as
// dtype_info(wt).vec_dot_type. `batch_rows` and `row` place the activation row in its matmul: the
// reference (llama.cpp on x86) picks different kernels, with different summation orders, for a
// single row, a batch, and the tail of a batch, and we follow it exactly (see kernels/ref/dot.cc).
float vec_dot(DType wt, const void* w, const void* act, int64_t n, int64_t batch_rows = 1, int64_t row = 0);

// Which summation variant the reference uses for activation row `row` of a batch of `batch_rows`:
//   tiny_blas   F32/F16/BF16 in a batch (llamafile tinyBLAS: one 8-lane accumulator per output)
//   repack_gemm Q4_K rows the repacked 8x8 GEMM covers (every row but the tail of a batch of 4+),
//               which flush their integer sums per 64 elements instead of per 256
struct DotVariant {
  bool tiny_blas = false;
  bool repack_gemm = false;
};
inline DotVariant dot_variant(int64_t n, int64_t batch_rows, int64_t row) {
  return {batch_rows > 1 && n % 8 == 0, batch_rows > 3 && row < batch_rows - batch_rows % 4};
}

}  // namespace chassis
