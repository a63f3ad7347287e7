// The decoder-only transformer forward pass, written once for every supported family:
//   x = embed(tokens)                                   (scaled by sqrt(n_embd) for gemma2)
//   per layer:  h = x + [post_norm] Attn(RMSNorm(x))     (GQA, rope, optional q/k norm, window)
//               x = h + [post_norm] FFN(RMSNorm(h))      (gated: act(gate) * up -> down)
//   logits = lm_head(RMSNorm(x))                        (softcapped for gemma2)
#pragma once
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "core/thread_pool.h"
#include "models/config.h"
#include "models/kv_cache.h"
#include "models/weights.h"

namespace chassis {

class Tracer;

// One row of a batch that may mix sequences: a token at a position of one sequence's cache.
struct BatchToken {
  int32_t token;
  int64_t pos;
  KvCache* cache;
  bool logits;  // whether this row's logits are wanted
};

class Transformer {
 public:
  // max_batch: most tokens evaluated in one pass; longer inputs are split into several passes.
  Transformer(const ModelConfig& cfg, const ModelWeights& w, ThreadPool& pool, int64_t max_batch);

  // Evaluates tokens at positions [pos0, pos0 + n), writing their keys/values into `cache`.
  // logits receives (n, n_vocab) when all_logits, else (1, n_vocab) for the last token.
  void forward(const int32_t* tokens, int64_t n, int64_t pos0, KvCache& cache, float* logits, bool all_logits);

  // Evaluates rows of several sequences together (continuous batching); each row reads and writes
  // only its own cache, and rows of one sequence come in position order. logits receives
  // (rows wanting logits, n_vocab) in row order. Row-invariant: each row's result is bit-identical
  // whatever else shares the batch, because every kernel takes its single-row path and attention
  // tiles every row (whose result depends only on its own keys) — so a request gets the same tokens
  // alone or under load.
  void forward_rows(const BatchToken* rows, int64_t n, float* logits);

  void set_tracer(Tracer* t) { tracer_ = t; }
  const ModelConfig& config() const { return cfg_; }
  int64_t max_batch() const { return max_batch_; }
  uint64_t scratch_bytes() const;

 private:
  // The batch being evaluated lives in tokens_/pos_/caches_/want_ (n rows).
  void forward_batch(int64_t n, float* logits);
  void check_rows(int64_t n) const;
  void embed(int64_t n);
  // rope_cos_/rope_sin_ for the batch's positions: once per pass, not twice per layer (libm's cos and
  // sin were most of a decode step's serial attention set-up).
  void rope_angles_of_rows(int64_t n);
  void attention_block(int64_t il, int64_t n);
  void ffn_block(int64_t il, int64_t n);
  void moe_ffn(int64_t il, int64_t n);
  void gated_activation(const float* gate, const float* up, int64_t stride, int64_t n, int64_t width);
  // xn = RMSNorm(x) * weight, as one thread's step, traced as name.
  void norm_rows(const VectorWeight& weight, const char* name, int64_t il, int64_t n);
  // x += [post_norm] o, as one thread's step; traces o first as product_name when it is given.
  void add_to_residual(int64_t il, int64_t n, const char* product_name, const VectorWeight& post_norm,
                       const char* norm_name, const char* out_name);
  void output(int64_t n, float* logits);
  void attention(int64_t il, int64_t n);
  // attention() for a prefill batch through attend_tiled_batch (kernels/cpu/attention_avx2.h).
  void attention_batched(int64_t il, int64_t n, const AttentionParams& ap);
  // Between the q/k/v products and attention: biases, q/k norms, rope, the KV store (one thread's).
  void prepare_attention(int64_t il, int64_t n);
  void forward_layers(int64_t n, float* logits);
  void route_experts(int64_t il, int64_t n);
  void mul(const WeightMatrix& w, const float* x, int64_t n, float* y);
  // Products of one input in one parallel region (see matmul_group).
  void mul_group(std::initializer_list<MatmulTarget> targets, const float* x, int64_t n);
  void trace(const char* name, int64_t il, const float* data, int64_t n, int64_t width);

  const ModelConfig& cfg_;
  const ModelWeights& w_;
  ThreadPool& pool_;
  int64_t max_batch_;
  Tracer* tracer_ = nullptr;
  RopeParams rope_;  // the config's, with the frequency factors (rope_freqs tensor or config)

  // The current batch: per row its token, position, cache and whether its logits are wanted.
  std::vector<int32_t> tokens_;
  std::vector<int64_t> pos_;
  std::vector<KvCache*> caches_;
  std::vector<uint8_t> want_;
  bool row_invariant_ = false;  // forward_rows: single-row kernels, tiled attention for every row
  int64_t kept_ = 0;  // rows left after the last attention (set in a serial step, read by the team)

  // Activations for one batch of B = max_batch tokens.
  std::vector<float> x_;      // (B, n_embd)   residual stream
  std::vector<float> xn_;     // (B, n_embd)   normalized input of a block
  std::vector<float> qkv_;    // (B, n_embd_q + 2 n_embd_kv) fused projection output [phi3]
  std::vector<float> q_;      // (B, n_embd_q)
  std::vector<float> k_;      // (B, n_embd_kv)
  std::vector<float> v_;      // (B, n_embd_kv)
  std::vector<float> rope_cos_, rope_sin_;  // (B, n_rot/2) each row's rope angles, for every layer
  std::vector<float> attn_;   // (B, n_embd_q) attention output before wo
  std::vector<float> o_;      // (B, n_embd)   block output before the residual add
  std::vector<uint8_t> embd_row_;  // one embedding row copied out of its group (interleaved embedding)
  std::vector<float> gate_;   // (B, n_ff)  or (B, 2 n_ff) gate|up when fused
  std::vector<float> up_;     // (B, n_ff)
  std::vector<float> act_;    // (B, n_ff)
  std::vector<float> scores_; // (n_threads, n_ctx) attention scores per worker
  // Mixture of experts [MoE]: router output, chosen experts and weights, one expert's batch.
  std::vector<float> router_;         // (B, n_expert)
  std::vector<int32_t> route_expert_; // (B, n_expert_used)
  std::vector<float> route_weight_;   // (B, n_expert_used)
  std::vector<int32_t> expert_order_; // (n_expert) experts by probability, for top-k
  std::vector<int64_t> expert_start_; // (n_expert + 1) where each expert's routes start below
  std::vector<int64_t> expert_rows_;  // (B, n_expert_used) routed rows grouped by expert, in token order
  std::vector<float> expert_weights_; // (B, n_expert_used) their routing weights
  std::vector<float> xe_;             // (B, n_embd) those rows' normalized input
  std::vector<float> ye_;             // (B, n_embd) the expert's output for them
};

}  // namespace chassis
