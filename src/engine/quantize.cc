// Per-tensor type choice (llama-quantize's rules for the presets we offer) and the streaming
// rewrite: each tensor is dequantized to f32 and quantized row by row while the file is written.
#include "engine/quantize.h"

#include <algorithm>
#include <thread>

#include "core/error.h"
#include "core/thread_pool.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/mapped_file.h"
#include "kernels/quants.h"
#include "models/weights.h"

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
  TensorToQuantize q{t.name, int(t.ne.size()), t.ne.empty() ? 0 : t.ne[0], t.type, 0, 0, c.tied_output};
  if (t.name.find("attn_v.weight") != std::string::npos) {
    q.index = c.i_attn_v++;
    q.count = c.n_attn_v;
  } else if (t.name.find("ffn_down") != std::string::npos) {
    q.index = c.i_ffn_down++;
    q.count = c.n_ffn_down;
  }
  return preset_tensor_type(p, q);
}

}  // namespace

DType preset_tensor_type(const QuantPreset& p, const TensorToQuantize& t) {
  const std::string& name = t.name;
  const bool allowed = t.n_dims >= 2 && ends_with(name, "weight") && name.find("_norm.weight") == std::string::npos;
  if (!allowed) return t.type;
  if (name.find("ffn_gate_inp.weight") != std::string::npos) return t.type;  // MoE routers stay exact, as llama-quantize keeps them
  DType type = p.base;
  if (!is_quantized(p.base)) return type;
  const bool is_output = name == "output.weight" || (t.tied_output && name == "token_embd.weight");
  if (is_output) {
    if (t.ne0 % 256 != 0) type = DType::Q8_0;
    else if (type != DType::Q8_0) type = DType::Q6_K;
  } else if (name.find("attn_v.weight") != std::string::npos || name.find("ffn_down") != std::string::npos) {
    if (p.mixture && use_more_bits(t.index, t.count)) type = DType::Q6_K;
  } else if (name.find("attn_qkv.weight") != std::string::npos) {
    if (p.base == DType::Q4_K) type = DType::Q5_K;  // llama-quantize's Q4_K_M / Q5_K_M rule for fused qkv
    else if (p.base == DType::Q5_K) type = DType::Q6_K;
  }
  return fallback(type, t.ne0);
}

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

void quantize_gguf(const std::string& in, const std::string& out, const QuantPreset& preset, int n_threads) {
  // Rows are independent: a tensor's are split across the pool (an 8B model's K-quant mixture took
  // over ten minutes on one thread).
  ThreadPool pool(n_threads > 0 ? n_threads : int(std::max(1u, std::thread::hardware_concurrency())));
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
    w.add_tensor(t.name, type, t.ne, [info, src, type, &pool](std::vector<uint8_t>& dst) {
      const int64_t row = info->ne[0], rows = info->n_elements() / row;
      if (type == info->type) {
        dst.assign(src, src + info->n_bytes);
        return;
      }
      const int64_t in_stride = row_bytes(info->type, row), out_stride = row_bytes(type, row);
      dst.resize(static_cast<size_t>(out_stride * rows));
      pool.parallel_for(rows, [&](int64_t b, int64_t e) {
        std::vector<float> f32(static_cast<size_t>(row));
        for (int64_t r = b; r < e; ++r) {
          dequantize_row(info->type, src + r * in_stride, f32.data(), row);
          quantize_row(type, f32.data(), dst.data() + r * out_stride, row);
        }
      });
    });
  }
  w.write(out);
}

QuantPreset load_quant_preset(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (lower == "q4_k" || lower == "q5_k") lower += "_m";
  const auto p = quant_preset(lower);
  if (!p) throw Error("--quant: unknown type '" + name + "' (one of q4_k, q5_k, " + quant_preset_names() + ")");
  return *p;
}

void quantize_loaded_weights(ModelWeights& w, const QuantPreset& p, int n_threads) {
  ThreadPool pool(std::max(1, n_threads));
  for_each_matrix(w, [&](const std::string& name, WeightMatrix& m, int layer) {
    const DType target = preset_tensor_type(p, {name, 2, m.n_in, m.type, layer, int(w.layers.size()), w.tied_output});
    if (target == m.type) return;
    if (is_quantized(m.type))
      throw Error("--quant " + p.name + ": tensor '" + name + "' is already " + std::string(dtype_name(m.type)) +
                  "; load-time quantization needs F32, F16 or BF16 weights (requantizing compounds the error)");
    if (!can_quantize(target))
      throw Error("--quant " + p.name + ": tensor '" + name + "' would need " + std::string(dtype_name(target)) +
                  ", which chassis cannot quantize to yet");
    const int64_t in_stride = m.row_stride(), out_stride = row_bytes(target, m.n_in);
    auto dst = std::make_shared<PageBuffer>(size_t(out_stride * m.n_out));
    const uint8_t* src = m.data;
    pool.parallel_for(m.n_out, [&](int64_t b, int64_t e) {
      std::vector<float> row(static_cast<size_t>(m.n_in));
      for (int64_t r = b; r < e; ++r) {
        dequantize_row(m.type, src + r * in_stride, row.data(), m.n_in);
        quantize_row(target, row.data(), dst->data() + r * out_stride, m.n_in);
      }
    });
    release_mapped_pages(src, size_t(in_stride * m.n_out));
    w.n_bytes = w.n_bytes - uint64_t(in_stride * m.n_out) + uint64_t(out_stride * m.n_out);
    if (name.find("_exps.") != std::string::npos)
      w.n_expert_bytes = w.n_expert_bytes - uint64_t(in_stride * m.n_out) + uint64_t(out_stride * m.n_out);
    m = WeightMatrix{target, dst->data(), m.n_in, m.n_out};
    w.owned.push_back(std::move(dst));
  });
  if (w.tied_output) w.output = w.token_embd;
}

}  // namespace chassis
