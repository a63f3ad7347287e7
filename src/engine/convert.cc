#include "engine/convert.h"
#include "engine/sampling_defaults.h"

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "io/read_file.h"
#include "kernels/quants.h"
#include "models/config.h"
#include "models/hf_model.h"

namespace chassis {

namespace {

namespace fs = std::filesystem;


// llama.cpp's permute() for q/k of the llama architecture: HF keeps each head's rotated pairs as two
// halves (rotate_half); GGUF llama interleaves them. new row h*hd + 2b + a <- old row h*hd + a*hd/2 + b.
int64_t permuted_source_row(int64_t row, int64_t head_dim) {
  const int64_t h = row / head_dim, j = row % head_dim, b = j / 2, a = j % 2;
  return h * head_dim + a * (head_dim / 2) + b;
}

// "blk.N.ffn_gate.E.weight": one expert of a layer, as HfTensors names a Hugging Face expert.
bool is_expert_slice(const std::string& name) {
  for (const char* kind : {".ffn_gate.", ".ffn_up.", ".ffn_down."}) {
    const size_t at = name.find(kind);
    if (at == std::string::npos) continue;
    const std::string rest = name.substr(at + std::strlen(kind));
    return rest.size() > 7 && std::isdigit(static_cast<unsigned char>(rest[0]));
  }
  return false;
}

// Each layer's experts as the 3-D tensors llama.cpp reads: blk.N.ffn_{gate,up,down}_exps.weight,
// (n_in, n_out, n_expert), expert e's rows at slice e, in the checkpoint's dtype.
void add_stacked_experts(GgufWriter& w, const HfTensors& tensors, const ModelConfig& c) {
  for (int64_t il = 0; il < c.n_layer; ++il) {
    for (const char* kind : {"ffn_gate", "ffn_up", "ffn_down"}) {
      const std::string base = "blk." + std::to_string(il) + "." + kind;
      std::vector<TensorRef> slices;
      for (int64_t e = 0; e < c.n_expert; ++e) {
        const std::string name = base + "." + std::to_string(e) + ".weight";
        const std::optional<TensorRef> ref = tensors.find(name);
        if (!ref) throw Error(tensors.label() + ": missing expert " + std::to_string(e) + " of layer " + std::to_string(il) + " (" + name + ")");
        if (ref->ne.size() != 2 || (!slices.empty() && (ref->ne != slices[0].ne || ref->type != slices[0].type)))
          throw Error(tensors.label() + ": expert tensor '" + ref->name + "' differs in shape or dtype from expert 0");
        slices.push_back(*ref);
      }
      const std::vector<int64_t> ne{slices[0].ne[0], slices[0].ne[1], c.n_expert};
      w.add_tensor(base + "_exps.weight", slices[0].type, ne, [slices](std::vector<uint8_t>& dst) {
        dst.clear();
        for (const TensorRef& s : slices) dst.insert(dst.end(), s.data, s.data + s.n_bytes);
      });
    }
  }
}

}  // namespace

void convert_hf_folder(const ConvertOptions& o) {
  const fs::path dir(o.dir);
  std::string name = dir.filename().string();
  if (name.empty()) name = dir.parent_path().filename().string();
  GgufWriter w;
  const fs::path config_path = dir / "config.json";
  if (!fs::exists(config_path)) {
    if (!o.vocab_only) throw Error(o.dir + ": no config.json (a model folder needs one; --vocab-only does not)");
    w.add_string("general.architecture", "llama");
    w.add_string("general.name", name);
    add_gguf_vocab(w, o.dir);
    w.write(o.out);
    return;
  }
  const ModelConfig c = config_from_hf(read_file(config_path.string()), config_path.string());
  std::string arch;
  switch (c.arch) {
    case Arch::Llama: arch = "llama"; break;  // Mistral too: llama.cpp converts it as llama
    case Arch::Qwen2: arch = "qwen2"; break;
    case Arch::Qwen3: arch = "qwen3"; break;
    case Arch::Qwen3Moe: arch = "qwen3moe"; break;
    case Arch::Phi3: arch = "phi3"; break;  // fused qkv and gate|up travel as they are
    case Arch::Gemma2: {
      // GGUF has no key for query_pre_attn_scalar: readers derive the scale from the shapes.
      const float derived = 1.0f / std::sqrt(float(c.n_layer == 46 ? c.n_embd / c.n_head : c.head_dim));
      if (std::fabs(derived - c.attn_scale) > 1e-6f * derived)
        throw Error(o.dir + ": query_pre_attn_scalar differs from what GGUF readers derive for this shape; cannot convert");
      if (c.attn_softcap == 0 || c.final_softcap == 0)
        throw Error(o.dir + ": Gemma 2 without logit soft-capping cannot be written to GGUF (readers assume it)");
      arch = "gemma2";
      break;
    }
    default: throw Error(o.dir + ": converting " + std::string(arch_display_name(c.arch)) + " folders is not supported yet");
  }
  add_config_to_gguf(w, c, arch, name);
  add_gguf_sampling(w, read_generation_config_sampling(o.dir));
  add_gguf_vocab(w, o.dir);
  if (o.vocab_only) {
    w.write(o.out);
    return;
  }

  const auto tensors = HfTensors::open(o.dir, c.arch);
  if (c.is_moe()) add_stacked_experts(w, *tensors, c);
  for (const std::string& gname : tensors->names()) {
    if (is_expert_slice(gname)) continue;  // written stacked above
    const TensorRef ref = *tensors->find(gname);
    if (ref.type != DType::F32 && ref.type != DType::F16 && ref.type != DType::BF16)
      throw Error(ref.name + ": only F32, F16 and BF16 tensors convert");
    // llama's q/k rows are interleaved in GGUF (qwen2/qwen3 use NeoX rope and keep HF's order).
    const bool permute = arch == "llama" && (gname.find(".attn_q.") != std::string::npos || gname.find(".attn_k.") != std::string::npos);
    // Vectors (norms, biases) are F32 in GGUF, as llama.cpp writes them.
    const bool vector = ref.ne.size() == 1;
    const DType type = vector ? DType::F32 : ref.type;
    // GGUF stores Gemma's RMSNorm scale as 1 + w, as llama.cpp's converter writes it.
    const bool is_norm = gname.size() > 11 && gname.compare(gname.size() - 11, 11, "norm.weight") == 0;
    const float norm_offset = vector && is_norm ? c.norm_weight_offset : 0.0f;
    w.add_tensor(gname, type, ref.ne, [ref, permute, vector, type, norm_offset, head_dim = c.head_dim](std::vector<uint8_t>& dst) {
      const int64_t row = ref.ne[0], rows = ref.n_elements() / row;
      const int64_t in_stride = row_bytes(ref.type, row), out_stride = row_bytes(type, row);
      dst.resize(size_t(out_stride * rows));
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t src_row = permute ? (vector ? r : permuted_source_row(r, head_dim)) : r;
        const uint8_t* src = ref.data + src_row * in_stride;
        if (type == ref.type) {
          std::memcpy(dst.data() + r * out_stride, src, size_t(out_stride));
        } else {
          dequantize_row(ref.type, src, reinterpret_cast<float*>(dst.data() + r * out_stride), row);
        }
      }
      if (norm_offset != 0) {
        float* v = reinterpret_cast<float*>(dst.data());
        for (int64_t i = 0; i < row; ++i) v[i] += norm_offset;
      }
      if (permute && vector) {  // a q/k bias: permute its elements the same way
        std::vector<uint8_t> copy = dst;
        const size_t el = sizeof(float);
        for (int64_t i = 0; i < row; ++i)
          std::memcpy(dst.data() + size_t(i) * el, copy.data() + size_t(permuted_source_row(i, head_dim)) * el, el);
      }
    });
  }
  // Llama 3 rope scaling travels as the per-frequency factors tensor, as llama.cpp writes it.
  if (!c.rope_factors.empty() && !tensors->find("rope_freqs.weight")) {
    std::vector<uint8_t> bytes(c.rope_factors.size() * sizeof(float));
    std::memcpy(bytes.data(), c.rope_factors.data(), bytes.size());
    w.add_tensor("rope_freqs.weight", DType::F32, {int64_t(c.rope_factors.size())}, std::move(bytes));
  }
  // Written as stored, then typed by the preset exactly as `chassis quantize` types a GGUF.
  const std::string tmp = o.out + ".convert-" + std::to_string(::getpid()) + ".tmp";
  try {
    w.write(tmp);
    quantize_gguf(tmp, o.out, o.preset);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  fs::remove(tmp, ec);
}

}  // namespace chassis
