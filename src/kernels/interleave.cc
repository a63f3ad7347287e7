#include "kernels/interleave.h"

#include <cstring>
#include <string>
#include <type_traits>

#include "core/error.h"

namespace chassis {
namespace {

// Element e's fifth bit (Q5_0's qh, little-endian bit e) <-> its place in BlockQ5_0x8::qh[r][j]:
// element 4k + j is bit k, element 16 + 4k + j is bit 4 + k.
inline int x8_bit_of_element(int e) { return e < 16 ? e / 4 : 4 + (e - 16) / 4; }
inline int x8_byte_of_element(int e) { return e % 4; }

template <typename B, typename BX8>
void pack_q4(const B* const rows[8], int64_t i, BX8& out) {
  for (int r = 0; r < 8; ++r) {
    const B& b = rows[r][i];
    out.d[r] = b.d;
    if constexpr (std::is_same_v<B, BlockQ4_1>) out.m[r] = b.m;
    for (int k = 0; k < 4; ++k) std::memcpy(out.qs[k][r], b.qs + 4 * k, 4);
  }
}

template <typename B, typename BX8>
void pack_q5(const B* const rows[8], int64_t i, BX8& out) {
  for (int r = 0; r < 8; ++r) {
    const B& b = rows[r][i];
    out.d[r] = b.d;
    if constexpr (std::is_same_v<B, BlockQ5_1>) out.m[r] = b.m;
    for (int k = 0; k < 4; ++k) std::memcpy(out.qs[k][r], b.qs + 4 * k, 4);
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    std::memset(out.qh[r], 0, 4);
    for (int e = 0; e < QK; ++e)
      if ((qh >> e) & 1) out.qh[r][x8_byte_of_element(e)] |= uint8_t(1u << x8_bit_of_element(e));
  }
}

void pack_q8_0(const BlockQ8_0* const rows[8], int64_t i, BlockQ8_0x8& out) {
  for (int r = 0; r < 8; ++r) {
    out.d[r] = rows[r][i].d;
    for (int l = 0; l < 8; ++l) std::memcpy(out.qs[l][r], rows[r][i].qs + 4 * l, 4);
  }
}

void unpack_q8_0(const BlockQ8_0x8& in, int r, BlockQ8_0& b) {
  b.d = in.d[r];
  for (int l = 0; l < 8; ++l) std::memcpy(b.qs + 4 * l, in.qs[l][r], 4);
}

template <typename BX8, typename B>
void unpack_q4(const BX8& in, int r, B& b) {
  b.d = in.d[r];
  if constexpr (std::is_same_v<B, BlockQ4_1>) b.m = in.m[r];
  for (int k = 0; k < 4; ++k) std::memcpy(b.qs + 4 * k, in.qs[k][r], 4);
}

template <typename BX8, typename B>
void unpack_q5(const BX8& in, int r, B& b) {
  b.d = in.d[r];
  if constexpr (std::is_same_v<B, BlockQ5_1>) b.m = in.m[r];
  for (int k = 0; k < 4; ++k) std::memcpy(b.qs + 4 * k, in.qs[k][r], 4);
  uint32_t qh = 0;
  for (int e = 0; e < QK; ++e)
    if ((in.qh[r][x8_byte_of_element(e)] >> x8_bit_of_element(e)) & 1) qh |= 1u << e;
  std::memcpy(b.qh, &qh, 4);
}

// Q4_K and Q5_K share the scales, mins and nibbles of their records (Q5_K adds the fifth bits).
template <typename B, typename BX8>
void pack_k4_common(const B& b, int r, BX8& out) {
  out.d[r] = b.d;
  out.dmin[r] = b.dmin;
  for (int sb = 0; sb < 8; ++sb) {
    int sc, mn;
    k4_scale_min(b.scales, sb, sc, mn);
    out.scales[sb / 2][r][sb % 2] = uint8_t(sc);
    out.mins[sb / 2][r][sb % 2] = uint8_t(mn);
  }
  for (int c = 0; c < 32; ++c) std::memcpy(out.qs[c][r], b.qs + 4 * c, 4);
}

void pack_q4_k(const BlockQ4_K* const rows[8], int64_t i, BlockQ4_Kx8& out) {
  for (int r = 0; r < 8; ++r) pack_k4_common(rows[r][i], r, out);
}

void pack_q5_k(const BlockQ5_K* const rows[8], int64_t i, BlockQ5_Kx8& out) {
  for (int r = 0; r < 8; ++r) {
    pack_k4_common(rows[r][i], r, out);
    for (int m = 0; m < 8; ++m) std::memcpy(out.qh[m][r], rows[r][i].qh + 4 * m, 4);
  }
}

// The inverse of k4_scale_min: eight 6-bit scales and mins packed into ggml's 12 bytes.
void pack_k4_scales(const int sc[8], const int mn[8], uint8_t q[12]) {
  for (int j = 0; j < 4; ++j) {
    q[j] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
    q[j + 4] = uint8_t(mn[j] | ((mn[j + 4] >> 4) << 6));
    q[j + 8] = uint8_t((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
  }
}

template <typename BX8, typename B>
void unpack_k4_common(const BX8& in, int r, B& b) {
  b.d = in.d[r];
  b.dmin = in.dmin[r];
  int sc[8], mn[8];
  for (int sb = 0; sb < 8; ++sb) {
    sc[sb] = in.scales[sb / 2][r][sb % 2];
    mn[sb] = in.mins[sb / 2][r][sb % 2];
  }
  pack_k4_scales(sc, mn, b.scales);
  for (int c = 0; c < 32; ++c) std::memcpy(b.qs + 4 * c, in.qs[c][r], 4);
}

void unpack_q4_k(const BlockQ4_Kx8& in, int r, BlockQ4_K& b) { unpack_k4_common(in, r, b); }

void unpack_q5_k(const BlockQ5_Kx8& in, int r, BlockQ5_K& b) {
  unpack_k4_common(in, r, b);
  for (int m = 0; m < 8; ++m) std::memcpy(b.qh + 4 * m, in.qh[m][r], 4);
}

template <typename B, typename BX8, int64_t kBlockSize, void (*Pack)(const B* const*, int64_t, BX8&)>
void interleave_groups(const uint8_t* rows, int64_t n_in, int64_t g_begin, int64_t g_end, uint8_t* dst) {
  const int64_t nb = n_in / kBlockSize;
  const int64_t stride = nb * int64_t(sizeof(B));
  for (int64_t g = g_begin; g < g_end; ++g) {
    const B* group_rows[8];
    for (int r = 0; r < 8; ++r) group_rows[r] = reinterpret_cast<const B*>(rows + (8 * g + r) * stride);
    auto* out = reinterpret_cast<BX8*>(dst + (g - g_begin) * nb * int64_t(sizeof(BX8)));
    for (int64_t i = 0; i < nb; ++i) Pack(group_rows, i, out[i]);
  }
}

// Row r % 8 of one group's blocks back in its own layout.
template <typename B, typename BX8, int64_t kBlockSize, void (*Unpack)(const BX8&, int, B&)>
void unpack_blocks(const uint8_t* group, int64_t n_in, int64_t r, uint8_t* out) {
  for (int64_t i = 0; i < n_in / kBlockSize; ++i)
    Unpack(reinterpret_cast<const BX8*>(group)[i], int(r % 8), reinterpret_cast<B*>(out)[i]);
}

}  // namespace

bool can_interleave(DType t) {
  return t == DType::Q4_0 || t == DType::Q4_1 || t == DType::Q5_0 || t == DType::Q5_1 || t == DType::Q8_0 ||
         t == DType::Q4_K || t == DType::Q5_K;
}

void interleave_rows(DType t, const uint8_t* rows, int64_t n_in, int64_t g_begin, int64_t g_end, uint8_t* dst) {
  switch (t) {
    case DType::Q4_0: return interleave_groups<BlockQ4_0, BlockQ4_0x8, QK, pack_q4>(rows, n_in, g_begin, g_end, dst);
    case DType::Q4_1: return interleave_groups<BlockQ4_1, BlockQ4_1x8, QK, pack_q4>(rows, n_in, g_begin, g_end, dst);
    case DType::Q5_0: return interleave_groups<BlockQ5_0, BlockQ5_0x8, QK, pack_q5>(rows, n_in, g_begin, g_end, dst);
    case DType::Q5_1: return interleave_groups<BlockQ5_1, BlockQ5_1x8, QK, pack_q5>(rows, n_in, g_begin, g_end, dst);
    case DType::Q8_0: return interleave_groups<BlockQ8_0, BlockQ8_0x8, QK, pack_q8_0>(rows, n_in, g_begin, g_end, dst);
    case DType::Q4_K: return interleave_groups<BlockQ4_K, BlockQ4_Kx8, QK_K, pack_q4_k>(rows, n_in, g_begin, g_end, dst);
    case DType::Q5_K: return interleave_groups<BlockQ5_K, BlockQ5_Kx8, QK_K, pack_q5_k>(rows, n_in, g_begin, g_end, dst);
    default: throw Error("interleave_rows: weights of type " + std::string(dtype_name(t)) + " are not interleaved");
  }
}

void deinterleave_row(DType t, const uint8_t* groups, int64_t n_in, int64_t r, uint8_t* out) {
  const uint8_t* group = groups + (r / 8) * interleaved_group_bytes(t, n_in);
  switch (t) {
    case DType::Q4_0: return unpack_blocks<BlockQ4_0, BlockQ4_0x8, QK, unpack_q4>(group, n_in, r, out);
    case DType::Q4_1: return unpack_blocks<BlockQ4_1, BlockQ4_1x8, QK, unpack_q4>(group, n_in, r, out);
    case DType::Q5_0: return unpack_blocks<BlockQ5_0, BlockQ5_0x8, QK, unpack_q5>(group, n_in, r, out);
    case DType::Q5_1: return unpack_blocks<BlockQ5_1, BlockQ5_1x8, QK, unpack_q5>(group, n_in, r, out);
    case DType::Q8_0: return unpack_blocks<BlockQ8_0, BlockQ8_0x8, QK, unpack_q8_0>(group, n_in, r, out);
    case DType::Q4_K: return unpack_blocks<BlockQ4_K, BlockQ4_Kx8, QK_K, unpack_q4_k>(group, n_in, r, out);
    case DType::Q5_K: return unpack_blocks<BlockQ5_K, BlockQ5_Kx8, QK_K, unpack_q5_k>(group, n_in, r, out);
    default: throw Error("deinterleave_row: weights of type " + std::string(dtype_name(t)) + " are not interleaved");
  }
}

}  // namespace chassis
