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
// The same for weights interleaved eight rows at a time (kernels/interleave.h): Q5_K, Q4_1 and Q5_1
// have tiles only in that layout.
bool has_interleaved_tiles_avx2(DType wt);

// The activation encoding the tiles read for weight type wt: dtype_info(wt).vec_dot_type, except F16
// weights, whose tiles read the f16-rounded activations widened to F32 (exactly the same values,
// without converting each one again for every weight row).
DType tiled_act_type(DType wt);

struct TileProblem {
  const uint8_t* w = nullptr;  // first weight row (interleaved: first group of 8 rows)
  int64_t w_stride = 0;        // bytes between weight rows (interleaved: between groups)
  int64_t n_rows = 0;          // interleaved: a multiple of 8
  const uint8_t* act = nullptr;  // first activation row, encoded as tiled_act_type()
  int64_t act_stride = 0;        // bytes between activation rows
  int64_t n_tok = 0;
  int64_t n = 0;         // elements per row
  float* y = nullptr;    // y[t * y_stride + r]
  int64_t y_stride = 0;
  DotVariant variant;  // the same for every token of the problem (see dot_variant)
  // Sums over each activation block that the tiles' unsigned quants need for their offset (see
  // ActSums), computed once per matmul instead of once per tile: act_sums[t * act_sums_stride + k].
  const int32_t* act_sums = nullptr;
  int64_t act_sums_stride = 0;
};

// What TileProblem::act_sums holds for a weight type.
enum class ActSums {
  kNone,
  kBlock,       // one per block: the sum of its 32 quants (Q4_0)
  // Eight per block: -16 x the sum of each 4-byte lane, where a lane's integer sum starts when the
  // quants are read unsigned (Q5_0 interleaved: its offset of 16).
  kLanesTimesMinus16,
  // The same with -128: Q8_0 interleaved on the VNNI tiles, which read its quants with 128 added.
  kLanesTimesMinus128
};
// The int32 values per activation block of a kind (0, 1 or 8).
int64_t act_sums_per_block(ActSums kind);
ActSums tiled_act_sums(DType wt, bool interleaved);
// Fills sums (nb or 8 * nb values, see ActSums) from nb Q8_0 activation blocks.
void compute_act_sums(ActSums kind, const void* q8_0_blocks, int64_t nb, int32_t* sums);

// Whether tiles that also use AVX-512BW/VL run: the CPU has them and they are not switched off (tests
// switch them off to check the AVX2-only tiles too; CHASSIS_NO_AVX512=1 does it for a whole run, to
// measure what a CPU without AVX-512 gets).
bool use_avx512_tiles();
void set_avx512_tiles_enabled(bool on);
// Whether the tiles that also use AVX512-VNNI run: use_avx512_tiles(), the CPU has VNNI, and neither
// the tests nor CHASSIS_NO_VNNI (for A/B measurements) switched them off. Their integer sums are the
// same exact integers, so results stay bit-identical.
bool use_vnni_tiles();
void set_vnni_tiles_enabled(bool on);
// Whether the VNNI tiles that also use GFNI run: use_vnni_tiles(), the CPU has GFNI, and neither the
// tests nor CHASSIS_NO_GFNI switched them off (same integers again).
bool use_gfni_tiles();
void set_gfni_tiles_enabled(bool on);
// Whether the 256-bit tiles use AVX-VNNI instead: the 512-bit tiles are off (no AVX-512, or switched
// off), the CPU has AVX-VNNI, and VNNI is not switched off.
bool use_avx_vnni_tiles();

// Computes the whole problem; every element equals the vec_dot() of its row and token under the
// problem's variant.
void matmul_tiles_avx2(DType wt, const TileProblem& p);

// The Q6_K, Q3_K and Q2_K problems of matmul_tiles_avx2 (matmul_k_rows_avx2.cc; Q3_K and Q2_K only
// when use_avx512_tiles()).
void matmul_k_rows_avx2(DType wt, const TileProblem& p);

// Batched F16 or BF16 problems (wt; p.variant.tiny_blas) with 512-bit registers, bit-identical to
// the 256-bit tiles; only when use_avx512_tiles().
void matmul_f16_batch_avx512(DType wt, const TileProblem& p);

// The rows of one block of matmul_f16_batch_avx512 (chunks of whole blocks keep its tiles full).
int64_t f16_batch_block_rows();

// The row count that chunks of a problem of n_tok tokens should be a multiple of: 16, a multiple of
// every tile's height and of a pair of interleaved groups (a chunk of an odd number of groups would
// leave one to the 256-bit tiles); for batched F16, the 512-bit kernel's row block.
int64_t tiled_chunk_rows(DType wt, int64_t n_tok);

// The same for weights interleaved eight rows at a time (kernels/interleave.h; only types for which
// can_interleave() holds): every element equals the vec_dot() of the original row.
void matmul_interleaved_avx2(DType wt, const TileProblem& p);

}  // namespace chassis
