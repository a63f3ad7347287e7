// Per-tensor type choice (llama-quantize's rules for the presets we offer) and the streaming
// rewrite: each tensor is dequantized to f32 and quantized row by row while the file is written.
#include "engine/quantize.h"

#include <algorithm>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/mapped_file.h"
#include "kernels/quants.h"

namespace chassis {
namespace {

const QuantPreset kPresets[] = {
    {"f32", DType::F32, false, 0},   {"f16", DType::F16, false, 1},   {"bf16", DType::BF16, false, 32},
    {"q8_0", DType::Q8_0, false, 7}, {"q4_0", DType::Q4_0, false, 2}, {"q4_1", DType::Q4_1, false, 3},
    {"q5_0", DType::Q5_0, false, 8}, {"q5_1", DType::Q5_1, false, 9}, {"q6_k", DType::Q6_K, false, 18},
    {"q4_k_m", DType::Q4_K, true, 15}, {"q5_k_m", DType::Q5_K, true, 17},
};

bool is_quantized(DType t) { return t != DType::F32 && t != DType::F16 && t != DType::BF16; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third in between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// A type whose block does not divide the row length falls back to a 32-block type.
DType fallback(DType t, int64_t ncols) {
  if (ncols % dtype_info(t).block_size == 0) return t;
  switch (t) {
    case DType::Q4_K: t = DType::Q5_0; break;
    case DType::Q5_K: t = DType::Q5_1; break;
    case DType::Q6_K: t = DType::Q8_0; break;
    default: break;
  }
  return ncols % dtype_info(t).block_size == 0 ? t : DType::F16;
}

struct Counters {
  int n_attn_v = 0, i_attn_v = 0, n_ffn_down = 0, i_ffn_down = 0;
  bool tied_output = true;
};

DType choose_type(const GgufTensorInfo& t, const QuantPreset& p, Counters& c) {
  const std::string& name = t.name;
  const bool allowed = t.ne.size() >= 2 && ends_with(name, "weight") && name.find("_norm.weight") == std::string::npos;
  if (!allowed) return t.type;
  DType type = p.base;
  if (!is_quantized(p.base)) return type;
  const bool is_output = name == "output.weight" || (c.tied_output && name == "token_embd.weight");
  if (is_output) {
    if (t.ne[0] % 256 != 0) type = DType::Q8_0;
    else if (type != DType::Q8_0) type = DType::Q6_K;
  } else if (name.find("attn_v.weight") != std::string::npos) {
    if (p.mixture && use_more_bits(c.i_attn_v, c.n_attn_v)) type = DType::Q6_K;
    ++c.i_attn_v;
  } else if (name.find("ffn_down") != std::string::npos) {
    if (p.mixture && use_more_bits(c.i_ffn_down, c.n_ffn_down)) type = DType::Q6_K;
    ++c.i_ffn_down;
  } else if (name.find("attn_qkv.weight") != std::string::npos) {
    if (p.base == DType::Q4_K) type = DType::Q5_K;  // llama-quantize's Q4_K_M / Q5_K_M rule for fused qkv
    else if (p.base == DType::Q5_K) type = DType::Q6_K;
  }
  return fallback(type, t.ne[0]);
}

}  // namespace

std::optional<QuantPreset> quant_preset(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  for (const auto& p : kPresets)
    if (lower == p.name) return p;
  return std::nullopt;
}

std::string quant_preset_names() {
  std::string s;
  for (const auto& p : kPresets) s += (s.empty() ? "" : ", ") + p.name;
  return s;
}

void quantize_gguf(const std::string& in, const std::string& out, const QuantPreset& preset) {
  MappedFile file(in);
  const GgufFile g = GgufFile::parse(file.data(), file.size(), in);
  g.check_all_tensor_bounds();
  if (g.tensors().empty()) throw Error(in + ": the file holds no tensors");
  Counters c;
  for (const auto& t : g.tensors()) {
    if (t.name.find("attn_v.weight") != std::string::npos) ++c.n_attn_v;
    if (t.name.find("ffn_down") != std::string::npos) ++c.n_ffn_down;
    if (t.name == "output.weight") c.tied_output = false;
  }
  GgufWriter w;
  for (const auto& [key, value] : g.metadata()) {
    if (key == "general.file_type" || key == "general.quantization_version") continue;
    w.add_value(key, value);
  }
  w.add_u32("general.file_type", preset.file_type);
  w.add_u32("general.quantization_version", 2);
  for (const auto& t : g.tensors()) {
    const DType type = choose_type(t, preset, c);
    if (type != t.type && is_quantized(t.type))
      throw Error(in + ": tensor '" + t.name + "' is already " + std::string(dtype_name(t.type)) +
                  "; quantize from an F32, F16 or BF16 file (requantizing compounds the error)");
    if (type != t.type && !can_quantize(type))
      throw Error(in + ": tensor '" + t.name + "' would need " + std::string(dtype_name(type)) +
                  ", which chassis cannot quantize to yet");
    const GgufTensorInfo* info = &t;
    const uint8_t* src = g.tensor_data(t);
    w.add_tensor(t.name, type, t.ne, [info, src, type](std::vector<uint8_t>& dst) {
      const int64_t row = info->ne[0], rows = info->n_elements() / row;
      if (type == info->type) {
        dst.assign(src, src + info->n_bytes);
        return;
      }
      std::vector<float> f32(static_cast<size_t>(row));
      const int64_t in_stride = row_bytes(info->type, row), out_stride = row_bytes(type, row);
      dst.resize(static_cast<size_t>(out_stride * rows));
      for (int64_t r = 0; r < rows; ++r) {
        dequantize_row(info->type, src + r * in_stride, f32.data(), row);
        quantize_row(type, f32.data(), dst.data() + r * out_stride, row);
      }
    });
  }
  w.write(out);
}

}  // namespace chassis
