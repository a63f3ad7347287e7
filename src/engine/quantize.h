// `chassis quantize`: rewrite a GGUF with its weights in another type, choosing each tensor's type
// the way llama-quantize does for that preset (Q4_K_M keeps the output in Q6_K and gives some
// layers' attn_v/ffn_down Q6_K), so the result matches llama.cpp's file tensor for tensor.
#pragma once
#include <optional>
#include <string>

#include "core/dtype.h"

namespace chassis {

struct QuantPreset {
  std::string name;      // "q4_k_m", ...
  DType base;            // the type of most weights
  bool mixture = false;  // K-quant mixes (Q4_K_M, Q5_K_M)
  uint32_t file_type;    // llama.cpp's general.file_type value
};

// Known presets: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q6_k q4_k_m q5_k_m; nullopt otherwise.
std::optional<QuantPreset> quant_preset(const std::string& name);
std::string quant_preset_names();

// Reads `in` (weights in F32, F16 or BF16), writes `out` atomically. Throws Error naming the file
// and the tensor for anything it cannot do (a quantized source, a type without a quantizer).
void quantize_gguf(const std::string& in, const std::string& out, const QuantPreset& preset);

}  // namespace chassis
