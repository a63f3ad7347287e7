// `chassis quantize`: rewrite a GGUF with its weights in another type, choosing each tensor's type
// the way llama-quantize does for that preset (Q4_K_M keeps the output in Q6_K and gives some
// layers' attn_v/ffn_down Q6_K), so the result matches llama.cpp's file tensor for tensor.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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

// One tensor as the per-tensor rules see it. `index`/`count` place an attn_v or ffn_down tensor among
// its kind (Q4_K_M gives some of them more bits); `tied_output`: the embedding is also the output.
struct TensorToQuantize {
  std::string name;  // GGUF name, e.g. "blk.3.attn_v.weight"
  int n_dims = 2;
  int64_t ne0 = 0;   // row length
  DType type = DType::F32;
  int index = 0, count = 0;
  bool tied_output = false;
};
// The type llama-quantize gives this tensor under the preset (its current type where it stays).
DType preset_tensor_type(const QuantPreset& p, const TensorToQuantize& t);

// The preset `--quant NAME` names: any quant_preset name, plus q4_k / q5_k for q4_k_m / q5_k_m.
// Throws Error listing the names for anything else.
QuantPreset load_quant_preset(const std::string& name);

struct ModelWeights;
// Load-time quantization (`--quant`): every weight matrix of a loaded model re-encoded in memory by the
// preset's per-tensor rules (as `quantize` would write them), on n_threads threads; the matrices then
// point into storage that w owns and the originals' mapped pages are released. Throws Error naming the
// tensor when one is already quantized to another type or its target type has no quantizer.
void quantize_loaded_weights(ModelWeights& w, const QuantPreset& p, int n_threads);

// Reads `in` (weights in F32, F16 or BF16), writes `out` atomically, each tensor's rows quantized on
// n_threads threads (<= 0: one per CPU; the bytes are the same for any count). Throws Error naming
// the file and the tensor for anything it cannot do (a quantized source, a type without a quantizer).
void quantize_gguf(const std::string& in, const std::string& out, const QuantPreset& preset, int n_threads = 0);

}  // namespace chassis
