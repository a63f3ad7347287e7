#include "core/dtype.h"

#include "core/error.h"

namespace chassis {
namespace {

constexpr DTypeInfo kInfos[] = {
    {DType::F32, "F32", 1, 4, DType::F32},
    {DType::F16, "F16", 1, 2, DType::F16},
    {DType::BF16, "BF16", 1, 2, DType::BF16},
    {DType::Q4_0, "Q4_0", QK, 2 + QK / 2, DType::Q8_0},
    {DType::Q4_1, "Q4_1", QK, 4 + QK / 2, DType::Q8_1},
    {DType::Q5_0, "Q5_0", QK, 2 + 4 + QK / 2, DType::Q8_0},
    {DType::Q5_1, "Q5_1", QK, 4 + 4 + QK / 2, DType::Q8_1},
    {DType::Q8_0, "Q8_0", QK, 2 + QK, DType::Q8_0},
    {DType::Q8_1, "Q8_1", QK, 4 + QK, DType::Q8_1},
    {DType::Q2_K, "Q2_K", QK_K, QK_K / 16 + QK_K / 4 + 4, DType::Q8_K},
    {DType::Q3_K, "Q3_K", QK_K, QK_K / 8 + QK_K / 4 + 12 + 2, DType::Q8_K},
    {DType::Q4_K, "Q4_K", QK_K, 4 + 12 + QK_K / 2, DType::Q8_K},
    {DType::Q5_K, "Q5_K", QK_K, 4 + 12 + QK_K / 8 + QK_K / 2, DType::Q8_K},
    {DType::Q6_K, "Q6_K", QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2, DType::Q8_K},
    {DType::Q8_K, "Q8_K", QK_K, 4 + QK_K + QK_K / 16 * 2, DType::Q8_K},
};

}  // namespace

std::optional<DTypeInfo> dtype_info(uint32_t raw) {
  for (const auto& i : kInfos)
    if (static_cast<uint32_t>(i.type) == raw) return i;
  return std::nullopt;
}

const DTypeInfo& dtype_info(DType t) {
  for (const auto& i : kInfos)
    if (i.type == t) return i;
  throw Error("internal: no info for dtype " + std::to_string(static_cast<uint32_t>(t)));
}

}  // namespace chassis
