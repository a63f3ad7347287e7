// Weight rows interleaved eight at a time, the layout the fast Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q4_K and Q5_K kernels read.
//
// Why: in GGUF each row is its own run of blocks, so a kernel working on several rows gathers each
// row's scale and quants from a different place, and unpacks (nibbles, Q5_0's fifth bits) one row at
// a time. Decoding Q4_0/Q5_0 that way is bound by instructions, not by memory. Interleaved, block i of
// eight rows is one contiguous record: the eight fp16 scales in one 16-byte load, and four bytes of
// each row side by side, so one 32-byte register holds the same four quant bytes of all eight rows
// and every integer sum lands in the lane of its row. The record holds exactly the bytes of the
// eight blocks (Q4_K's adds 2.8 %, see below), and every value is the same: kernels on this layout give the same
// results as the reference dot product on the original rows (integer sums are exact; the float
// operations per row stay those of kernels/ref/dot.cc).
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "kernels/quants.h"

namespace chassis {

constexpr int64_t kInterleavedRows = 8;

// Block i of rows 8g..8g+7 (Q4_0): qs[k][r][j] is row r's qs[4k + j]: byte lanes of a 32-byte load
// of qs[k] are (row, j), so low nibbles hold elements 4k..4k+3 and high nibbles 16+4k..16+4k+3.
struct BlockQ4_0x8 {
  uint16_t d[8];
  uint8_t qs[4][8][4];
};
// Q4_1 the same, plus the eight rows' minimums.
struct BlockQ4_1x8 {
  uint16_t d[8], m[8];
  uint8_t qs[4][8][4];
};
// Q5_0 the same as Q4_0, plus the 256 fifth bits arranged like qs: bit k of qh[r][j] is the fifth bit of
// row r's element 4k + j, bit 4 + k that of element 16 + 4k + j (k = 0..3).
struct BlockQ5_0x8 {
  uint16_t d[8];
  uint8_t qh[8][4];
  uint8_t qs[4][8][4];
};
// Q5_1 the same as Q5_0, plus the eight rows' minimums.
struct BlockQ5_1x8 {
  uint16_t d[8], m[8];
  uint8_t qh[8][4];
  uint8_t qs[4][8][4];
};
// Q8_0: qs[l][r] is row r's quants 4l..4l+3 (lane l of the reference's eight).
struct BlockQ8_0x8 {
  uint16_t d[8];
  int8_t qs[8][8][4];
};
// Super-block i of rows 8g..8g+7 (Q4_K). The 6-bit scales and mins are stored unpacked, one byte
// each, paired as the kernel multiplies them (sub-blocks 2p and 2p+1 of row r side by side): 32
// bytes more than the eight packed blocks (1184 vs 1152, +2.8 %), to spare unpacking them per row.
// qs[c][r][j] is row r's qs[4c + j]: chunk c = 8p + m holds elements 64p + 4m + j (low nibbles) and
// 64p + 32 + 4m + j (high nibbles).
struct BlockQ4_Kx8 {
  uint16_t d[8], dmin[8];
  uint8_t scales[4][8][2];
  uint8_t mins[4][8][2];
  uint8_t qs[32][8][4];
};
// Q5_K: Q4_K's record plus the fifth bits, qh[m][r][j] = row r's qh[4m + j], whose bit s is the
// fifth bit of element 32s + 4m + j: one 32-byte load gives lane m's fifth bits of every sub-block
// of the eight rows (1440 bytes vs 1408 packed, +2.3 %).
struct BlockQ5_Kx8 {
  uint16_t d[8], dmin[8];
  uint8_t scales[4][8][2];
  uint8_t mins[4][8][2];
  uint8_t qh[8][8][4];
  uint8_t qs[32][8][4];
};
static_assert(sizeof(BlockQ4_0x8) == 8 * sizeof(BlockQ4_0) && sizeof(BlockQ5_0x8) == 8 * sizeof(BlockQ5_0) &&
              sizeof(BlockQ8_0x8) == 8 * sizeof(BlockQ8_0) && sizeof(BlockQ5_1x8) == 8 * sizeof(BlockQ5_1) &&
              sizeof(BlockQ4_1x8) == 8 * sizeof(BlockQ4_1));
static_assert(sizeof(BlockQ4_Kx8) == 8 * sizeof(BlockQ4_K) + 32 && sizeof(BlockQ5_Kx8) == 8 * sizeof(BlockQ5_K) + 32);

// Whether interleave_rows supports weights of this type.
bool can_interleave(DType t);

// Bytes of one group of eight interleaved rows of n_in elements (8 rows' bytes; Q4_K and Q5_K a
// little more).
inline int64_t interleaved_group_bytes(DType t, int64_t n_in) {
  if (t == DType::Q4_K) return n_in / QK_K * int64_t(sizeof(BlockQ4_Kx8));
  if (t == DType::Q5_K) return n_in / QK_K * int64_t(sizeof(BlockQ5_Kx8));
  return kInterleavedRows * row_bytes(t, n_in);
}

// Groups [g_begin, g_end) of a row-major matrix (rows of n_in elements) into dst, laid out group after
// group (dst points at group 0's place).
void interleave_rows(DType t, const uint8_t* rows, int64_t n_in, int64_t g_begin, int64_t g_end, uint8_t* dst);

// Row r of an interleaved matrix back in its stored GGUF form (row_bytes(t, n_in) bytes at out).
void deinterleave_row(DType t, const uint8_t* groups, int64_t n_in, int64_t r, uint8_t* out);

}  // namespace chassis
