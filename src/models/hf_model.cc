// config.json -> ModelConfig, and safetensors shards -> TensorSource with GGUF tensor names.
#include "models/hf_model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/error.h"
#include "io/json_file.h"

namespace chassis {
namespace {

struct HfFamily {
  const char* architecture;
  Arch arch;
  const char* arch_name;
};
constexpr HfFamily kHfFamilies[] = {
    {"LlamaForCausalLM", Arch::Llama, "llama"},
    {"MistralForCausalLM", Arch::Llama, "llama"},
    {"Qwen2ForCausalLM", Arch::Qwen2, "qwen2"},
    {"Qwen3ForCausalLM", Arch::Qwen3, "qwen3"},
    {"MixtralForCausalLM", Arch::Llama, "llama"},  // llama with experts, as llama.cpp has it
    {"Qwen3MoeForCausalLM", Arch::Qwen3Moe, "qwen3moe"},
    {"Phi3ForCausalLM", Arch::Phi3, "phi3"},
    {"Gemma2ForCausalLM", Arch::Gemma2, "gemma2"},
};

// config.json's top-level fields, read with the checks and error messages (naming the file) that
// every family needs.
class HfConfigFields {
 public:
  HfConfigFields(const nlohmann::json& j, const std::string& label) : j_(j), label_(label) {}
  const nlohmann::json& json() const { return j_; }
  const std::string& label() const { return label_; }
  Error fail(const std::string& what) const { return Error(label_ + ": " + what); }
  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  // An integer in [lo, hi]; absent or null: def, or an error when there is no default.
  int64_t integer(const char* key, std::optional<int64_t> def, int64_t lo, int64_t hi) const {
    if (!has(key)) {
      if (!def) throw fail(std::string("missing required field \"") + key + "\"");
      return *def;
    }
    if (!j_[key].is_number_integer()) throw fail(std::string("\"") + key + "\" must be an integer");
    const int64_t v = j_[key].get<int64_t>();
    if (v < lo || v > hi)
      throw fail(std::string("\"") + key + "\" = " + std::to_string(v) + " is out of range (" + std::to_string(lo) + ".." +
                 std::to_string(hi) + ")");
    return v;
  }
  double number(const char* key, double def) const {
    if (!has(key)) return def;
    if (!j_[key].is_number()) throw fail(std::string("\"") + key + "\" must be a number");
    return j_[key].get<double>();
  }

 private:
  const nlohmann::json& j_;
  const std::string& label_;
};

// rope_scaling: linear, llama3 (per-frequency factors) or yarn; anything that changes attention as
// well as positions is refused rather than run wrong.
void read_rope_scaling(const HfConfigFields& f, ModelConfig& c) {
  if (!f.has("rope_scaling")) return;
  const auto& rs = f.json()["rope_scaling"];
  if (!rs.is_object()) throw f.fail("\"rope_scaling\" must be an object or null");
  auto field = [&](const char* key) -> std::optional<double> {
    if (!rs.contains(key) || rs[key].is_null()) return std::nullopt;
    if (!rs[key].is_number()) throw f.fail(std::string("rope_scaling.") + key + " must be a number");
    return rs[key].get<double>();
  };
  const std::string type = rs.value("rope_type", rs.value("type", std::string()));
  const double factor = rs.contains("factor") && rs["factor"].is_number() ? rs["factor"].get<double>() : 1.0;
  if (type == "linear") {
    if (factor <= 0) throw f.fail("rope_scaling.factor must be positive");
    c.rope.freq_scale = static_cast<float>(1.0 / factor);
  } else if (type == "llama3") {
    const double low = field("low_freq_factor").value_or(1.0), high = field("high_freq_factor").value_or(4.0);
    const double orig = field("original_max_position_embeddings").value_or(8192.0);
    if (factor <= 0 || low <= 0 || high <= low || orig <= 0) throw f.fail("rope_scaling (llama3) has out-of-range values");
    c.rope_factors = llama3_rope_factors(c.rope.n_rot, c.rope.freq_base, float(factor), float(low), float(high), float(orig));
  } else if (type == "yarn") {
    // transformers' _compute_yarn_parameters: the explicit factor; original context from rope_scaling,
    // else max_position_embeddings; betas 32/1 when unset or 0; cos/sin scaled by attention_factor,
    // by default 0.1 ln(factor) + 1 (which ggml applies itself, so an explicit one is divided by it).
    if (!field("factor")) throw f.fail("rope_scaling (yarn) needs a factor");
    if (field("mscale").value_or(0) != 0 || field("mscale_all_dim").value_or(0) != 0)
      throw f.fail("rope_scaling (yarn) with mscale/mscale_all_dim (DeepSeek style) is not supported yet");
    if (rs.contains("truncate") && rs["truncate"] == false)
      throw f.fail("rope_scaling (yarn) with truncate = false is not supported yet");
    c.yarn.factor = float(factor);
    if (factor < 1) throw f.fail("rope_scaling.factor must be at least 1 for yarn");
    const auto orig = field("original_max_position_embeddings");
    c.yarn.orig_ctx = orig ? int64_t(*orig) : f.integer("max_position_embeddings", std::nullopt, 1, int64_t(1) << 32);
    const double bf = field("beta_fast").value_or(0), bs = field("beta_slow").value_or(0);
    c.yarn.beta_fast = float(bf != 0 ? bf : 32.0);
    c.yarn.beta_slow = float(bs != 0 ? bs : 1.0);
    if (const auto af = field("attention_factor")) c.yarn.attn_factor = float(*af / (0.1 * std::log(factor) + 1.0));
  } else if (type != "default" && !type.empty()) {
    // dynamic/longrope change attention as well as positions; refused rather than run wrong.
    throw f.fail("rope_scaling type '" + type + "' is not supported for Hugging Face folders yet");
  }
}

// Mixtral and Qwen3-MoE: every layer routes each token to some of its experts.
void read_experts(const HfConfigFields& f, const std::string& architecture, ModelConfig& c) {
  if (architecture == "MixtralForCausalLM") {
    // MixtralSparseMoeBlock: every layer routes to num_experts_per_tok of num_local_experts
    // experts of width intermediate_size, weights renormalized over the chosen ones.
    c.n_expert = f.integer("num_local_experts", std::nullopt, 1, 4096);
    c.n_expert_used = f.integer("num_experts_per_tok", 2, 1, c.n_expert);
    c.n_ff_exp = c.n_ff;
    c.expert_weights_norm = true;
  }
  if (c.arch == Arch::Qwen3Moe) {
    const nlohmann::json& j = f.json();
    c.n_expert = f.integer("num_experts", std::nullopt, 1, 4096);
    c.n_expert_used = f.integer("num_experts_per_tok", std::nullopt, 1, c.n_expert);
    c.n_ff_exp = f.integer("moe_intermediate_size", std::nullopt, 1, 1 << 22);
    if (j.contains("norm_topk_prob") && !j["norm_topk_prob"].is_boolean()) throw f.fail("\"norm_topk_prob\" must be true or false");
    c.expert_weights_norm = j.value("norm_topk_prob", false);
    // Dense layers between sparse ones (decoder_sparse_step > 1, mlp_only_layers) are not supported:
    // refused rather than run with the wrong FFN.
    if (f.integer("decoder_sparse_step", 1, 1, 4096) != 1)
      throw f.fail("decoder_sparse_step other than 1 (dense layers between MoE layers) is not supported");
    if (j.contains("mlp_only_layers") && !(j["mlp_only_layers"].is_null() || (j["mlp_only_layers"].is_array() && j["mlp_only_layers"].empty())))
      throw f.fail("mlp_only_layers (dense layers between MoE layers) is not supported");
  }
}

// Gemma2RMSNorm multiplies by (1 + w); the MLP is GELU(tanh)-gated; q is scaled by
// query_pre_attn_scalar^-1/2; scores and logits are soft-capped; even layers see a window.
void read_gemma2(const HfConfigFields& f, ModelConfig& c) {
  c.norm_weight_offset = 1;
  c.scale_embeddings = true;
  c.post_norms = true;
  c.scale_q_first = true;
  std::string act = "gelu_pytorch_tanh";
  for (const char* key : {"hidden_activation", "hidden_act"}) {
    if (f.json().contains(key) && f.json()[key].is_string()) {
      act = f.json()[key].get<std::string>();
      break;
    }
  }
  if (act != "gelu_pytorch_tanh") throw f.fail("hidden_activation '" + act + "' is not supported for Gemma 2 (gelu_pytorch_tanh is)");
  c.ffn_act = FfnActivation::GeluTanhF32;
  const double scalar = f.number("query_pre_attn_scalar", double(c.head_dim));
  if (!(scalar > 0)) throw f.fail("query_pre_attn_scalar must be positive");
  c.attn_scale = static_cast<float>(1.0 / std::sqrt(scalar));
  c.attn_softcap = static_cast<float>(f.number("attn_logit_softcapping", 0.0));
  c.final_softcap = static_cast<float>(f.number("final_logit_softcapping", 0.0));
  if (c.attn_softcap < 0 || c.final_softcap < 0) throw f.fail("logit soft-capping values must not be negative");
  c.sliding_window = f.integer("sliding_window", 4096, 1, int64_t(1) << 32);
  c.swa_period = 2;  // layers 0, 2, 4, ... are windowed (Gemma2Attention: not layer_idx % 2)
}

// One qkv_proj (rows q|k|v) and one gate_up_proj (rows gate|up), as GGUF's phi3 stores them.
void read_phi3(const HfConfigFields& f, ModelConfig& c) {
  c.fused_qkv = true;
  c.fused_gate_up = true;
  c.scale_q_first = true;  // as llama.cpp evaluates phi3
  // Phi-3's sliding window (2047 in mini-4k) spans its whole context: not applied, as in llama.cpp.
  const double partial = f.number("partial_rotary_factor", 1.0);
  if (!(partial > 0 && partial <= 1)) throw f.fail("partial_rotary_factor must be in (0, 1]");
  c.rope.n_rot = static_cast<int>(double(c.head_dim) * partial);
  if (c.rope.n_rot % 2 != 0) throw f.fail("partial_rotary_factor gives an odd number of rotated dims");
}

}  // namespace

ModelConfig config_from_hf(const std::string& text, const std::string& label) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(label + ": invalid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(label + ": expected a JSON object");
  const HfConfigFields f(j, label);

  if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty() || !j["architectures"][0].is_string())
    throw f.fail("missing \"architectures\"");
  const std::string architecture = j["architectures"][0].get<std::string>();
  const HfFamily* fam = nullptr;
  for (const auto& family : kHfFamilies)
    if (architecture == family.architecture) fam = &family;
  if (!fam) {
    std::string known;
    for (const auto& family : kHfFamilies) known += std::string(known.empty() ? "" : ", ") + family.architecture;
    throw f.fail("architecture '" + architecture + "' is not supported for Hugging Face folders yet (supported: " + known + ")");
  }
  ModelConfig c;
  c.arch = fam->arch;
  c.arch_name = fam->arch_name;
  c.n_embd = f.integer("hidden_size", std::nullopt, 1, 1 << 20);
  c.n_layer = f.integer("num_hidden_layers", std::nullopt, 1, 4096);
  c.n_ff = f.integer("intermediate_size", std::nullopt, 1, 1 << 22);
  c.n_head = f.integer("num_attention_heads", std::nullopt, 1, 4096);
  c.n_head_kv = f.integer("num_key_value_heads", c.n_head, 1, c.n_head);
  if (c.n_head % c.n_head_kv != 0) throw f.fail("num_attention_heads is not a multiple of num_key_value_heads");
  if (!f.has("head_dim") && c.n_embd % c.n_head != 0) throw f.fail("hidden_size is not a multiple of num_attention_heads");
  c.head_dim = f.integer("head_dim", c.n_embd / c.n_head, 1, 1024);
  c.n_ctx_train = f.integer("max_position_embeddings", std::nullopt, 1, int64_t(1) << 32);
  c.n_vocab = f.integer("vocab_size", std::nullopt, 1, 2'000'000);
  c.rms_eps = static_cast<float>(f.number("rms_norm_eps", 1e-6));
  // HF keeps q/k rows in rotate_half order: RoPE pairs dims i and i + d/2, the NeoX layout.
  c.rope.style = RopeStyle::NeoX;
  c.rope.n_rot = static_cast<int>(c.head_dim);
  c.rope.freq_base = static_cast<float>(f.number("rope_theta", 10000.0));
  read_rope_scaling(f, c);
  const bool sliding = j.value("use_sliding_window", fam->arch == Arch::Llama);
  if (sliding && j.contains("sliding_window") && j["sliding_window"].is_number_integer()) {
    const int64_t window = f.integer("sliding_window", std::nullopt, 1, int64_t(1) << 32);
    if (fam->arch == Arch::Llama) {  // Mistral v0.1: every layer sees the last `window` positions
      c.sliding_window = window;
      c.swa_period = 1;
    } else {
      // Qwen2 windows only the layers past max_window_layers: exact up to the window, so the trained
      // context is capped there rather than run wrong beyond it.
      c.n_ctx_train = std::min(c.n_ctx_train, window);
    }
  }
  c.attn_scale = 1.0f / std::sqrt(float(c.head_dim));
  if (c.arch == Arch::Qwen2) c.qkv_bias_required = true;
  if (c.arch == Arch::Qwen3 || c.arch == Arch::Qwen3Moe) c.qk_norm = true;
  read_experts(f, architecture, c);
  if (c.arch == Arch::Gemma2) read_gemma2(f, c);
  if (c.arch == Arch::Phi3) read_phi3(f, c);
  if (c.yarn.factor > 0) apply_yarn(c, label);  // after partial rotary factors have fixed n_rot
  return c;
}

std::string gguf_tensor_name(const std::string& hf, Arch arch) {
  static const std::pair<const char*, const char*> kTop[] = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"lm_head.weight", "output.weight"},
      {"model.norm.weight", "output_norm.weight"},
  };
  for (const auto& [from, to] : kTop)
    if (hf == from) return to;
  static const std::string prefix = "model.layers.";
  if (hf.compare(0, prefix.size(), prefix) != 0) return "";
  const size_t dot = hf.find('.', prefix.size());
  if (dot == std::string::npos) return "";
  const std::string layer = hf.substr(prefix.size(), dot - prefix.size());
  if (layer.empty() || layer.find_first_not_of("0123456789") != std::string::npos) return "";
  const std::string rest = hf.substr(dot + 1);
  if (arch == Arch::Gemma2) {  // four norms per layer; "post_attention" is a post-norm here, not the FFN's input norm
    static const std::pair<const char*, const char*> kGemma2[] = {
        {"post_attention_layernorm.weight", "post_attention_norm.weight"},
        {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
        {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
    };
    for (const auto& [from, to] : kGemma2)
      if (rest == from) return "blk." + layer + "." + to;
  }
  static const std::pair<const char*, const char*> kLayer[] = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
      {"self_attn.qkv_proj.weight", "attn_qkv.weight"},  // phi3
      {"mlp.gate_up_proj.weight", "ffn_up.weight"},       // phi3: gate|up
  };
  for (const auto& [from, to] : kLayer)
    if (rest == from) return "blk." + layer + "." + to;
  // Experts: Mixtral's block_sparse_moe.{gate, experts.E.w1|w2|w3} and Qwen3-MoE's
  // mlp.{gate, experts.E.gate_proj|up_proj|down_proj}, as ffn_gate_inp and per-expert ffn_*.E.
  if (rest == "block_sparse_moe.gate.weight" || rest == "mlp.gate.weight") return "blk." + layer + ".ffn_gate_inp.weight";
  for (const char* experts : {"block_sparse_moe.experts.", "mlp.experts."}) {
    const std::string pre = experts;
    if (rest.compare(0, pre.size(), pre) != 0) continue;
    const size_t edot = rest.find('.', pre.size());
    if (edot == std::string::npos) return "";
    const std::string e = rest.substr(pre.size(), edot - pre.size());
    if (e.empty() || e.size() > 5 || e.find_first_not_of("0123456789") != std::string::npos) return "";
    static const std::pair<const char*, const char*> kExpert[] = {
        {"w1.weight", "ffn_gate"}, {"w2.weight", "ffn_down"}, {"w3.weight", "ffn_up"},
        {"gate_proj.weight", "ffn_gate"}, {"up_proj.weight", "ffn_up"}, {"down_proj.weight", "ffn_down"},
    };
    const std::string leaf = rest.substr(edot + 1);
    for (const auto& [from, to] : kExpert)
      if (leaf == from) return "blk." + layer + "." + to + "." + std::to_string(std::stoi(e)) + ".weight";
  }
  return "";
}

std::unique_ptr<HfTensors> HfTensors::open(const std::string& dir, Arch arch) {
  namespace fs = std::filesystem;
  auto t = std::unique_ptr<HfTensors>(new HfTensors());
  t->label_ = dir;
  std::vector<std::string> shards;
  const std::string index = (fs::path(dir) / "model.safetensors.index.json").string();
  if (fs::exists(index)) {
    const nlohmann::json j = read_json_object(index, IfMissing::kFail);
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) throw Error(index + ": missing \"weight_map\"");
    std::set<std::string> names;
    for (const auto& [tensor, file] : j["weight_map"].items()) {
      if (!file.is_string()) throw Error(index + ": weight_map[\"" + tensor + "\"] must be a file name");
      const std::string f = file.get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        throw Error(index + ": shard name '" + f + "' must be a plain file name in the folder");
      if (names.insert(f).second) shards.push_back(f);
    }
    if (shards.empty()) throw Error(index + ": weight_map is empty");
  } else if (fs::exists(fs::path(dir) / "model.safetensors")) {
    shards.push_back("model.safetensors");
  } else {
    throw Error(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  for (const std::string& shard : shards) {
    const std::string path = (fs::path(dir) / shard).string();
    t->files_.push_back(std::make_unique<MappedFile>(path));
    t->parsed_.push_back(SafetensorsFile::parse(t->files_.back()->data(), t->files_.back()->size(), path));
  }
  for (const SafetensorsFile& f : t->parsed_) {
    for (const SafetensorsTensor& st : f.tensors()) {
      const std::string name = gguf_tensor_name(st.name, arch);
      if (name.empty()) continue;
      const std::optional<DType> type = to_engine_dtype(st.dtype);
      if (!type) throw Error(f.label() + ": tensor '" + st.name + "' is " + safetensors_dtype_name(st.dtype) + "; weights must be F32, F16 or BF16");
      if (t->by_gguf_name_.count(name)) throw Error(f.label() + ": tensor '" + st.name + "' appears in two shards");
      t->by_gguf_name_[name] = TensorRef{st.name, std::vector<int64_t>(st.shape.rbegin(), st.shape.rend()), *type,
                                         f.tensor_data(st), st.end - st.begin};
    }
  }
  return t;
}

std::vector<std::string> HfTensors::names() const {
  std::vector<std::string> out;
  for (const auto& [name, ref] : by_gguf_name_) out.push_back(name);
  return out;
}

std::optional<TensorRef> HfTensors::find(const std::string& gguf_name) const {
  auto it = by_gguf_name_.find(gguf_name);
  if (it == by_gguf_name_.end()) return std::nullopt;
  return it->second;
}

uint64_t HfTensors::file_bytes() const {
  uint64_t n = 0;
  for (const auto& f : files_) n += f->size();
  return n;
}

}  // namespace chassis
