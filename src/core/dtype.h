// Tensor element types as numbered in GGUF (ggml_type), with their block layout.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace chassis {

enum class DType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};

struct DTypeInfo {
  DType type;
  std::string_view name;
  int64_t block_size;  // elements per block
  int64_t block_bytes; // bytes per block
  DType vec_dot_type;  // what activations are rounded/quantized to for a dot product with this type
};

// Returns nullopt for a type number this engine does not know (an error the loader reports).
std::optional<DTypeInfo> dtype_info(uint32_t raw);
const DTypeInfo& dtype_info(DType t);
inline std::string_view dtype_name(DType t) { return dtype_info(t).name; }

// Bytes of one row of n elements; n must be a multiple of the block size.
inline int64_t row_bytes(DType t, int64_t n) {
  const auto& i = dtype_info(t);
  return n / i.block_size * i.block_bytes;
}

constexpr int QK = 32;     // block size of the simple quants
constexpr int QK_K = 256;  // block size of the k-quants

}  // namespace chassis
