// The weights of a decoder-only transformer, as views into the mmapped GGUF (nothing copied except
// the 1-D tensors, which are tiny). Every tensor's shape is checked against the
// config at load, so a mismatched file fails with the tensor's name instead of reading out of bounds.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/page_buffer.h"

#include "kernels/matmul.h"
#include "models/config.h"

namespace chassis {

class GgufFile;
class TensorSource;

// A 1-D f32 vector (norm weight, bias), always in owned storage (see load_weights).
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

  // Matrices quantized or packed at load time (--quant, pack_weights) point into these buffers.
  std::vector<std::shared_ptr<const PageBuffer>> owned;
  uint64_t owned_bytes() const {
    uint64_t n = 0;
    for (const auto& b : owned) n += b->size();
    return n;
  }
  // Whether p points into one of the owned buffers (rather than into the model file's mapping).
  bool owns(const void* p) const {
    const auto* q = static_cast<const uint8_t*>(p);
    for (const auto& b : owned)
      if (q >= b->data() && q < b->data() + b->size()) return true;
    return false;
  }
};

// Calls fn(gguf_name, matrix, layer) for every weight matrix the model has: token_embd.weight (layer
// 0), output.weight unless tied (layer 0), then each layer's by GGUF name; an expert matrix is named
// by its stacked tensor (blk.N.ffn_up_exps.weight, once per expert).
void for_each_matrix(ModelWeights& w, const std::function<void(const std::string&, WeightMatrix&, int)>& fn);

// Moves every matrix the kernels read whole into one owned buffer (core/page_buffer.h: huge pages
// where the OS gives them), on n_threads threads, and releases their mapped pages: interleaved where
// the kernels read the type faster so (kernels/interleave.h, matmul_prefers_interleaved; Q4_K's layout
// holds 2.8 % more, which n_bytes then counts), copied as they are otherwise. Why copy: a file's
// mapping is backed by 4 KiB pages, and streaming gigabytes through them costs a page walk every
// 4 KiB (F16 Llama-3.2-1B decoded 35-60 % faster from huge pages on an EPYC). The memory used is the
// same: the file's pages become page cache, which the OS reclaims first. The embedding matrix (read by
// rows) is packed only when it is also the output matrix; matrices already owned (load-time
// quantization) stay where they are.
void pack_weights(ModelWeights& w, int n_threads);

// Binds every tensor the config needs; sets cfg.n_vocab from the embedding matrix.
ModelWeights load_weights(const TensorSource& source, ModelConfig& cfg);
ModelWeights load_weights(const GgufFile& f, ModelConfig& cfg);

}  // namespace chassis
