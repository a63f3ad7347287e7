// AVX2+FMA builds of element-wise kernels whose reference is plain scalar code (kernels/ref/
// elementwise.h): the same source compiled for an FMA target, bit-identical to the reference, and
// activation quantizers (Q8_0, Q8_K) vectorised with the reference's exact rounding.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "kernels/ops.h"

namespace chassis {

// Only call these when cpu_has_avx2().
void rope_rotate_avx2(float* x, int n_head, int head_dim, const RopeParams& p, const float* cs, const float* sn);
void swiglu_avx2(const float* gate, const float* up, float* out, int64_t n);

// Encodes n floats as t like quantize_row() and returns true, or returns false for a type without
// an AVX2 quantizer here (Q8_0 and Q8_K have one).
bool quantize_row_avx2(DType t, const float* src, void* dst, int64_t n);

// out[i] = x[i] rounded to f16 and widened back (round_f16), by the F16C instructions: what F16
// weights' tiles read as activations.
void round_f16_avx2(const float* x, float* out, int64_t n);
// f32_to_f16_row by the F16C instructions (NaNs as f32_to_f16 writes them: sign, 0x7e00).
void f32_to_f16_row_avx2(const float* x, uint16_t* out, int64_t n);

}  // namespace chassis
