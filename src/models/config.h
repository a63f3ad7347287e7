// Typed configuration of a decoder-only transformer. One struct describes every supported family;
// the differences between llama, qwen2, qwen3, phi3 and gemma2 are fields here, not code paths
// scattered through the model.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/ops.h"

namespace chassis {

class GgufFile;
class GgufWriter;

enum class Arch { Llama, Qwen2, Qwen3, Qwen3Moe, Phi3, Gemma2 };  // Mixtral is Llama with experts
// Gated FFN activation: act(gate) * up. GeluTanh rounds through f16 as llama.cpp's CPU table does
// (GGUF files); GeluTanhF32 is transformers' gelu_pytorch_tanh in float32 (Hugging Face folders).
enum class FfnActivation { SiLU, GeluTanh, GeluTanhF32 };

// YaRN context extension as configured (kept so that convert can write it back to GGUF).
struct YarnScaling {
  float factor = 0;       // 0: no YaRN
  int64_t orig_ctx = 0;   // the context the model was trained at before extension
  float beta_fast = 32, beta_slow = 1;
  float attn_factor = 1;  // ggml's convention: multiplies the 1 + 0.1 ln(factor) magnitude scale
};

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string arch_name;  // as in general.architecture

  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_ff = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;  // per head, for q, k and v
  float rms_eps = 1e-5f;

  RopeParams rope;                  // n_rot, base, style, linear scale
  std::vector<float> rope_factors;  // Llama-3 style per-frequency divisors computed from metadata (if no tensor)
  YarnScaling yarn;

  // Family traits.
  bool qkv_bias_required = false;  // qwen2: q/k/v carry biases
  bool qk_norm = false;            // qwen3: per-head RMSNorm of q and k before rope
  bool fused_qkv = false;          // phi3: one attn_qkv matrix, rows q|k|v
  bool fused_gate_up = false;      // phi3: ffn_up holds gate|up
  bool post_norms = false;         // gemma2: norms after attention and after the FFN
  bool scale_embeddings = false;   // gemma2: embeddings * sqrt(n_embd)
  float norm_weight_offset = 0;    // gemma2 HF checkpoints: RMSNorm scales by (1 + w); GGUF stores 1 + w
  FfnActivation ffn_act = FfnActivation::SiLU;
  float attn_scale = 0;            // multiplies q.k; 1/sqrt(head_dim) unless the family says otherwise
  bool scale_q_first = false;      // phi3, gemma2 scale q before the f16 q.k product (as llama.cpp does)
  float attn_softcap = 0;          // gemma2: 50
  float final_softcap = 0;         // gemma2: 30
  // Mixture of experts (Mixtral, Qwen3-MoE): every layer's FFN is n_expert gated FFNs of width n_ff_exp,
  // of which a router picks n_expert_used per token (softmax, top-k, renormalized if expert_weights_norm).
  int64_t n_expert = 0;            // 0: a dense FFN of width n_ff
  int64_t n_expert_used = 0;
  int64_t n_ff_exp = 0;
  bool expert_weights_norm = true;
  int64_t sliding_window = 0;      // 0: every layer attends to the whole context
  int swa_period = 0;              // 1: every layer uses the window; else layer il does when il % swa_period < swa_period - 1

  int64_t n_embd_q() const { return n_head * head_dim; }
  int64_t n_embd_kv() const { return n_head_kv * head_dim; }
  bool is_moe() const { return n_expert > 0; }
  bool layer_uses_window(int64_t il) const {
    return sliding_window > 0 && (swa_period == 1 || (swa_period > 1 && (il % swa_period) < swa_period - 1));
  }
};

// Reads `<arch>.*` keys; throws Error naming the file and the unsupported architecture or bad value.
ModelConfig config_from_gguf(const GgufFile& f);

// The inverse: general.architecture/name and the `<arch>.*` keys from which GGUF readers (llama.cpp,
// config_from_gguf) derive this config, as llama.cpp's converter writes them. Used by `convert` and
// by the synthetic benchmark models, so both spell the keys once.
void add_config_to_gguf(GgufWriter& w, const ModelConfig& c, const std::string& arch, const std::string& name);

const char* arch_display_name(Arch a);

// Sets rope's YaRN fields from c.yarn (throws Error naming `label` on out-of-range values): angles
// interpolated by 1/factor below the correction range, kept above it, as ggml's rope_yarn.
void apply_yarn(ModelConfig& c, const std::string& label);

// Llama-3 rope scaling as per-frequency divisors (what a GGUF's rope_freqs tensor holds): long
// wavelengths slowed by `factor`, short ones kept, a smooth ramp between.
std::vector<float> llama3_rope_factors(int n_rot, float base, float factor, float low, float high, float orig_ctx);

}  // namespace chassis
