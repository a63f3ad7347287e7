#include "models/config.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"

namespace chassis {
namespace {

struct Family {
  const char* name;
  Arch arch;
  RopeStyle rope_style;
};

// Every architecture this engine runs; anything else is refused by name.
constexpr Family kFamilies[] = {
    {"llama", Arch::Llama, RopeStyle::Normal},
    {"qwen2", Arch::Qwen2, RopeStyle::NeoX},
    {"qwen3", Arch::Qwen3, RopeStyle::NeoX},
    {"qwen3moe", Arch::Qwen3Moe, RopeStyle::NeoX},
    {"phi3", Arch::Phi3, RopeStyle::NeoX},
    {"gemma2", Arch::Gemma2, RopeStyle::NeoX},
};

}  // namespace

// Llama-3 rope scaling: long wavelengths are slowed by `factor`, short ones kept, a smooth ramp between.
std::vector<float> llama3_rope_factors(int n_rot, float base, float factor, float low, float high, float orig_ctx) {
  std::vector<float> out(n_rot / 2);
  const float low_wavelen = orig_ctx / low, high_wavelen = orig_ctx / high;
  for (int i = 0; i < n_rot / 2; ++i) {
    const float freq = std::pow(base, -2.0f * i / n_rot);
    const float wavelen = 2 * float(M_PI) / freq;
    if (wavelen < high_wavelen) out[i] = 1;
    else if (wavelen > low_wavelen) out[i] = factor;
    else {
      const float smooth = (orig_ctx / wavelen - low) / (high - low);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

void apply_yarn(ModelConfig& c, const std::string& label) {
  const YarnScaling& y = c.yarn;
  if (!(y.factor >= 1) || y.orig_ctx <= 0 || !(y.beta_fast > 0) || !(y.beta_slow > 0) || !(y.attn_factor > 0))
    throw Error(label + ": YaRN rope scaling needs factor >= 1 and positive original context, betas and attention factor");
  c.rope.freq_scale = 1.0f / y.factor;
  c.rope.ext_factor = 1.0f;
  c.rope.attn_factor = y.attn_factor;
  // The pair whose wavelength makes n_rotations turns over the original context; below beta_fast turns
  // angles are interpolated, above beta_slow kept (ggml_rope_yarn_corr_dims).
  const float n_dims = float(c.rope.n_rot);
  auto corr_dim = [&](float n_rotations) {
    return n_dims * std::log(float(y.orig_ctx) / (n_rotations * 2 * float(M_PI))) / (2 * std::log(c.rope.freq_base));
  };
  c.rope.corr_dims[0] = std::max(0.0f, std::floor(corr_dim(y.beta_fast)));
  c.rope.corr_dims[1] = std::min(n_dims - 1, std::ceil(corr_dim(y.beta_slow)));
}

const char* arch_display_name(Arch a) {
  for (const auto& f : kFamilies)
    if (f.arch == a) return f.name;
  return "?";
}

ModelConfig config_from_gguf(const GgufFile& f) {
  const std::string arch = f.require_string("general.architecture");
  const Family* fam = nullptr;
  for (const auto& x : kFamilies)
    if (arch == x.name) fam = &x;
  if (!fam) {
    std::string known;
    for (const auto& x : kFamilies) known += std::string(known.empty() ? "" : ", ") + x.name;
    throw Error(f.label() + ": unsupported architecture '" + arch + "' (supported: " + known + ")");
  }
  const std::string p = arch + ".";
  ModelConfig c;
  c.arch = fam->arch;
  c.arch_name = arch;
  c.n_embd = f.require_int(p + "embedding_length");
  c.n_layer = f.require_int(p + "block_count");
  c.n_ff = f.require_int(p + "feed_forward_length");
  c.n_head = f.require_int(p + "attention.head_count");
  c.n_head_kv = f.get_int(p + "attention.head_count_kv").value_or(c.n_head);
  c.n_ctx_train = f.require_int(p + "context_length");
  c.rms_eps = static_cast<float>(f.get_float(p + "attention.layer_norm_rms_epsilon").value_or(1e-5));

  auto positive = [&](const char* what, int64_t v, int64_t max) {
    if (v <= 0 || v > max)
      throw Error(f.label() + ": " + p + what + " = " + std::to_string(v) + " is out of range (1.." + std::to_string(max) + ")");
  };
  positive("embedding_length", c.n_embd, 1 << 20);
  positive("block_count", c.n_layer, 4096);
  positive("feed_forward_length", c.n_ff, 1 << 22);
  positive("attention.head_count", c.n_head, 4096);
  positive("attention.head_count_kv", c.n_head_kv, c.n_head);
  positive("context_length", c.n_ctx_train, int64_t(1) << 32);
  if (c.n_head % c.n_head_kv != 0)
    throw Error(f.label() + ": head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " + std::to_string(c.n_head_kv));

  c.head_dim = f.get_int(p + "attention.key_length").value_or(c.n_embd / c.n_head);
  const int64_t v_len = f.get_int(p + "attention.value_length").value_or(c.head_dim);
  if (v_len != c.head_dim) throw Error(f.label() + ": attention.value_length != key_length is not supported");
  positive("attention.key_length", c.head_dim, 1024);
  if (!f.find(p + "attention.key_length") && c.n_embd % c.n_head != 0)
    throw Error(f.label() + ": embedding_length is not a multiple of head_count");

  c.rope.style = fam->rope_style;
  c.rope.n_rot = static_cast<int>(f.get_int(p + "rope.dimension_count").value_or(c.head_dim));
  if (c.rope.n_rot <= 0 || c.rope.n_rot > c.head_dim || c.rope.n_rot % 2 != 0)
    throw Error(f.label() + ": rope.dimension_count " + std::to_string(c.rope.n_rot) + " must be even and at most the head size " + std::to_string(c.head_dim));
  c.rope.freq_base = static_cast<float>(f.get_float(p + "rope.freq_base").value_or(10000.0));
  if (auto s = f.get_float(p + "rope.scale_linear")) c.rope.freq_scale = static_cast<float>(1.0 / *s);
  if (auto type = f.get_string(p + "rope.scaling.type")) {
    const double factor = f.get_float(p + "rope.scaling.factor").value_or(1.0);
    if (*type == "none") {
    } else if (*type == "linear") {
      if (factor <= 0) throw Error(f.label() + ": rope.scaling.factor must be positive");
      c.rope.freq_scale = static_cast<float>(1.0 / factor);
    } else if (*type == "llama3") {
      const auto low = f.get_float(p + "rope.scaling.low_freq_factor").value_or(1.0);
      const auto high = f.get_float(p + "rope.scaling.high_freq_factor").value_or(4.0);
      const auto orig = f.get_float(p + "rope.scaling.original_context_length").value_or(8192.0);
      c.rope_factors = llama3_rope_factors(c.rope.n_rot, c.rope.freq_base, float(factor), float(low), float(high), float(orig));
    } else if (*type == "yarn") {
      c.yarn.factor = float(factor);
      c.yarn.orig_ctx = f.get_int(p + "rope.scaling.original_context_length").value_or(c.n_ctx_train);
      c.yarn.beta_fast = float(f.get_float(p + "rope.scaling.yarn_beta_fast").value_or(32.0));
      c.yarn.beta_slow = float(f.get_float(p + "rope.scaling.yarn_beta_slow").value_or(1.0));
      c.yarn.attn_factor = float(f.get_float(p + "rope.scaling.yarn_attn_factor")
                                     .value_or(f.get_float(p + "rope.scaling.attn_factor").value_or(1.0)));
      apply_yarn(c, f.label());
    } else {
      throw Error(f.label() + ": rope scaling type '" + *type + "' is not supported yet");
    }
  }

  c.attn_scale = 1.0f / std::sqrt(float(c.head_dim));
  switch (c.arch) {
    case Arch::Llama:
      // Mistral v0.1: every layer attends to the last sliding_window positions (chassis's converter
      // writes the key; llama.cpp's leaves it out and attends to everything).
      if (auto w = f.get_int(p + "attention.sliding_window"); w && *w > 0) {
        c.sliding_window = *w;
        c.swa_period = 1;
      }
      break;
    case Arch::Qwen2: c.qkv_bias_required = true; break;
    case Arch::Qwen3: c.qk_norm = true; break;
    case Arch::Qwen3Moe: c.qk_norm = true; break;
    case Arch::Phi3:
      c.fused_qkv = true;
      c.fused_gate_up = true;
      c.scale_q_first = true;
      c.sliding_window = 0;  // phi3's window (2047 in mini-4k) is wider than its context: not applied
      break;
    case Arch::Gemma2:
      c.post_norms = true;
      c.scale_q_first = true;
      c.scale_embeddings = true;
      c.ffn_act = FfnActivation::GeluTanh;
      c.attn_softcap = static_cast<float>(f.get_float(p + "attn_logit_softcapping").value_or(50.0));
      c.final_softcap = static_cast<float>(f.get_float(p + "final_logit_softcapping").value_or(30.0));
      c.sliding_window = f.get_int(p + "attention.sliding_window").value_or(4096);
      c.swa_period = 2;
      // Gemma-2 27B (46 layers) scales queries by 1/sqrt(n_embd/n_head) instead of 1/sqrt(head_dim).
      if (c.n_layer == 46) c.attn_scale = 1.0f / std::sqrt(float(c.n_embd / c.n_head));
      break;
  }
  c.n_expert = f.get_int(p + "expert_count").value_or(0);
  if (c.n_expert > 0) {
    positive("expert_count", c.n_expert, 4096);
    c.n_expert_used = f.require_int(p + "expert_used_count");
    positive("expert_used_count", c.n_expert_used, c.n_expert);
    c.n_ff_exp = f.get_int(p + "expert_feed_forward_length").value_or(c.n_ff);
    positive("expert_feed_forward_length", c.n_ff_exp, 1 << 22);
    c.expert_weights_norm = f.get_bool(p + "expert_weights_norm").value_or(true);
    if (c.arch != Arch::Llama && c.arch != Arch::Qwen3Moe)
      throw Error(f.label() + ": experts are not supported for the " + arch + " architecture");
  } else if (c.arch == Arch::Qwen3Moe) {
    throw Error(f.label() + ": " + p + "expert_count is missing (qwen3moe needs experts)");
  }
  // vocab size comes from the embedding tensor (the key is optional in GGUF); the loader sets it.
  c.n_vocab = f.get_int(p + "vocab_size").value_or(0);
  return c;
}

void add_config_to_gguf(GgufWriter& w, const ModelConfig& c, const std::string& arch, const std::string& name) {
  w.add_string("general.architecture", arch);
  w.add_string("general.name", name);
  const std::string p = arch + ".";
  w.add_u32(p + "vocab_size", uint32_t(c.n_vocab));
  w.add_u32(p + "context_length", uint32_t(c.n_ctx_train));
  w.add_u32(p + "embedding_length", uint32_t(c.n_embd));
  w.add_u32(p + "block_count", uint32_t(c.n_layer));
  w.add_u32(p + "feed_forward_length", uint32_t(c.n_ff));
  w.add_u32(p + "attention.head_count", uint32_t(c.n_head));
  w.add_u32(p + "attention.head_count_kv", uint32_t(c.n_head_kv));
  w.add_f32(p + "attention.layer_norm_rms_epsilon", c.rms_eps);
  w.add_f32(p + "rope.freq_base", c.rope.freq_base);
  w.add_u32(p + "rope.dimension_count", uint32_t(c.rope.n_rot));
  if (c.head_dim * c.n_head != c.n_embd || c.arch == Arch::Qwen3 || c.arch == Arch::Gemma2) {
    w.add_u32(p + "attention.key_length", uint32_t(c.head_dim));
    w.add_u32(p + "attention.value_length", uint32_t(c.head_dim));
  }
  if (c.is_moe()) {
    w.add_u32(p + "expert_count", uint32_t(c.n_expert));
    w.add_u32(p + "expert_used_count", uint32_t(c.n_expert_used));
    if (c.arch == Arch::Qwen3Moe) w.add_u32(p + "expert_feed_forward_length", uint32_t(c.n_ff_exp));
    // llama.cpp always renormalizes the chosen experts' weights for these families; the key lets a
    // reader that honours it (chassis) run norm_topk_prob = false checkpoints as trained.
    if (!c.expert_weights_norm) w.add_bool(p + "expert_weights_norm", false);
  }
  if (c.sliding_window > 0 && c.arch == Arch::Llama) w.add_u32(p + "attention.sliding_window", uint32_t(c.sliding_window));
  if (c.arch == Arch::Gemma2) {
    w.add_u32(p + "attention.sliding_window", uint32_t(c.sliding_window));
    w.add_f32(p + "attn_logit_softcapping", c.attn_softcap);
    w.add_f32(p + "final_logit_softcapping", c.final_softcap);
  }
  if (c.yarn.factor > 0) {
    w.add_string(p + "rope.scaling.type", "yarn");
    w.add_f32(p + "rope.scaling.factor", c.yarn.factor);
    w.add_u32(p + "rope.scaling.original_context_length", uint32_t(c.yarn.orig_ctx));
    if (c.yarn.beta_fast != 32.0f) w.add_f32(p + "rope.scaling.yarn_beta_fast", c.yarn.beta_fast);
    if (c.yarn.beta_slow != 1.0f) w.add_f32(p + "rope.scaling.yarn_beta_slow", c.yarn.beta_slow);
    if (c.yarn.attn_factor != 1.0f) w.add_f32(p + "rope.scaling.yarn_attn_factor", c.yarn.attn_factor);
  } else if (c.rope.freq_scale != 1.0f) {
    w.add_string(p + "rope.scaling.type", "linear");
    w.add_f32(p + "rope.scaling.factor", 1.0f / c.rope.freq_scale);
  }
}

}  // namespace chassis
