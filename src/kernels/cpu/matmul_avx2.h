// AVX2 tiles of a matrix product: a few weight rows times a few activation rows at once, so each
// weight block is loaded and unpacked once per tile instead of once per dot product, the activation
// block is shared by the tile's rows, and the tile's accumulators are independent chains.
//
// Every output element is computed with exactly the float operations of its single dot product in
// kernels/ref/dot.cc, in the same order (the tile only interleaves independent dot products; integer
// partial sums are exact, so they may be formed any way). Results are therefore bit-identical to
// vec_dot() / vec_dot_avx2(), which the tests check on odd shapes.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "kernels/quants.h"

namespace chassis {

// Whether matmul_tiles_avx2 covers weights of this type (only call when cpu_has_avx2()).
bool has_tiled_avx2(DType wt);

// The activation encoding the tiles read for weight type wt: dtype_info(wt).vec_dot_type, except F16
// weights, whose tiles read the f16-rounded activations widened to F32 (exactly the same values,
// without converting each one again for every weight row).
DType tiled_act_type(DType wt);

struct TileProblem {
  const uint8_t* w = nullptr;  // first weight row
  int64_t w_stride = 0;        // bytes between weight rows
  int64_t n_rows = 0;
  const uint8_t* act = nullptr;  // first activation row, encoded as tiled_act_type()
  int64_t act_stride = 0;        // bytes between activation rows
  int64_t n_tok = 0;
  int64_t n = 0;         // elements per row
  float* y = nullptr;    // y[t * y_stride + r]
  int64_t y_stride = 0;
  DotVariant variant;  // the same for every token of the problem (see dot_variant)
  // Q4_0 only: the sum of each activation block's 32 quants, act_sums[t * act_sums_stride + block]
  // (see quant_block_sums), computed once per matmul instead of once per tile.
  const int32_t* act_sums = nullptr;
  int64_t act_sums_stride = 0;
};

// Whether tiles of this weight type read TileProblem::act_sums.
bool tiled_needs_act_sums(DType wt);
// sums[b] = sum of the 32 int8 quants of Q8_0 block b, for nb blocks.
void quant_block_sums(const void* q8_0_blocks, int64_t nb, int32_t* sums);

// Whether tiles that also use AVX-512BW/VL (at 256-bit width) run: the CPU has them and they are not
// switched off. Tests switch them off to check the AVX2-only tiles too.
bool use_avx512_tiles();
void set_avx512_tiles_enabled(bool on);

// Computes the whole problem; every element equals the vec_dot() of its row and token under the
// problem's variant.
void matmul_tiles_avx2(DType wt, const TileProblem& p);

}  // namespace chassis
