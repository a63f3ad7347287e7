// The weights of a decoder-only transformer, as views into the mmapped GGUF (nothing copied except
// 1-D tensors stored in a non-f32 type, which are tiny). Every tensor's shape is checked against the
// config at load, so a mismatched file fails with the tensor's name instead of reading out of bounds.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kernels/matmul.h"
#include "models/config.h"

namespace chassis {

class GgufFile;
class TensorSource;

// A 1-D f32 vector (norm weight, bias): points into the file or into owned storage.
struct VectorWeight {
  const float* data = nullptr;
  std::shared_ptr<std::vector<float>> owned;
  explicit operator bool() const { return data != nullptr; }
};

struct LayerWeights {
  VectorWeight attn_norm;      // (n_embd)
  WeightMatrix wq, wk, wv;     // (n_embd_q, n_embd), (n_embd_kv, n_embd) x2    [unless fused]
  WeightMatrix wqkv;           // (n_embd_q + 2*n_embd_kv, n_embd)               [phi3]
  VectorWeight bq, bk, bv;     // (n_embd_q), (n_embd_kv) x2                     [qwen2, optional elsewhere]
  VectorWeight q_norm, k_norm; // (head_dim)                                     [qwen3]
  WeightMatrix wo;             // (n_embd, n_embd_q)
  VectorWeight attn_post_norm; // (n_embd)                                       [gemma2]
  VectorWeight ffn_norm;       // (n_embd)
  WeightMatrix ffn_gate;       // (n_ff, n_embd)                                 [unless fused]
  WeightMatrix ffn_up;         // (n_ff, n_embd), or (2*n_ff, n_embd) gate|up    [phi3]
  WeightMatrix ffn_down;       // (n_embd, n_ff)
  WeightMatrix ffn_gate_inp;   // (n_expert, n_embd) router                       [MoE, instead of the above]
  std::vector<WeightMatrix> ffn_gate_exps, ffn_up_exps;  // n_expert x (n_ff_exp, n_embd)
  std::vector<WeightMatrix> ffn_down_exps;               // n_expert x (n_embd, n_ff_exp)
  VectorWeight ffn_post_norm;  // (n_embd)                                       [gemma2]
};

struct ModelWeights {
  WeightMatrix token_embd;     // (n_vocab, n_embd)
  VectorWeight output_norm;    // (n_embd)
  WeightMatrix output;         // (n_vocab, n_embd); the embedding matrix when tied
  bool tied_output = false;
  VectorWeight rope_freqs;     // (n_rot/2) optional Llama-3 frequency divisors
  std::vector<LayerWeights> layers;

  uint64_t n_params = 0;
  uint64_t n_bytes = 0;
  uint64_t n_expert_bytes = 0;  // of n_bytes, the experts' (a token reads n_expert_used / n_expert of them)
};

// Binds every tensor the config needs; sets cfg.n_vocab from the embedding matrix.
ModelWeights load_weights(const TensorSource& source, ModelConfig& cfg);
ModelWeights load_weights(const GgufFile& f, ModelConfig& cfg);

}  // namespace chassis
