// Generation for one sequence: evaluate the prompt, then sample token by token until the budget, an
// end-of-generation token, or the end of the context. Text is streamed as complete UTF-8 only.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "models/kv_cache.h"
#include "models/transformer.h"

namespace chassis {

class Tracer;

// Holds back bytes of a UTF-8 character split across tokens until the character is complete.
class Utf8Stream {
 public:
  std::string push(const std::string& piece);
  std::string flush();  // whatever is left, with incomplete sequences replaced by U+FFFD
 private:
  std::string pending_;
};

struct GenerateRequest {
  std::vector<int32_t> prompt;
  int n_predict = 128;  // < 0: until end of generation or context
  SamplingParams sampling;
  int n_logprobs = 0;   // top logprobs to report per generated token
  bool logprob = false; // report each generated token's own logprob (a log-softmax over the vocabulary)
  // Keep the KV entries of the longest common prefix with what this session evaluated before and
  // evaluate only the rest (a chat's earlier turns). Off by default: evaluating a prompt in one
  // batch or in two can differ in the last bits, and one-shot runs must match the reference exactly.
  bool reuse_cached_prefix = false;
};

struct TokenEvent {
  int32_t id;
  std::string text;  // newly completed UTF-8 text (may be empty while a character is split)
  float logprob = 0;  // when the request asks (logprob or n_logprobs > 0)
  std::vector<std::pair<int32_t, float>> top;  // when n_logprobs > 0
};

struct GenerateResult {
  std::vector<int32_t> tokens;
  std::string text;
  std::string stop_reason;  // "eos", "limit" or "context"
  std::vector<TokenEvent> events;
  double prompt_ms = 0, generate_ms = 0;
  size_t prompt_tokens_reused = 0;  // prompt tokens whose KV came from the previous call
};

class Session {
 public:
  // kv_f32: keep keys/values in f32 instead of f16 (exact attention inputs, twice the memory).
  Session(const Model& model, int64_t n_ctx, int n_threads, bool kv_f32 = false);
  int64_t n_ctx() const { return cache_.n_ctx(); }
  uint64_t kv_bytes() const { return cache_.bytes(); }
  // Activations and logits the forward pass keeps (the weights are mmapped, the KV cache above).
  uint64_t scratch_bytes() const { return transformer_.scratch_bytes() + logits_.capacity() * sizeof(float); }
  void set_tracer(Tracer* t) { transformer_.set_tracer(t); }

  // Evaluates tokens at positions [pos0, pos0 + n) and returns the logits of the last one
  // (benchmarks and scoring; generate() is the way to produce text).
  const std::vector<float>& evaluate(const std::vector<int32_t>& tokens, int64_t pos0);

  // on_token returning false stops generation early (stop_reason "cancelled").
  GenerateResult generate(const GenerateRequest& req, const std::function<bool(const TokenEvent&)>& on_token = {});

 private:
  const Model& model_;
  ThreadPool pool_;
  KvCache cache_;
  Transformer transformer_;
  std::vector<float> logits_;
  std::vector<int32_t> cached_;  // tokens whose keys/values are in cache_ at positions 0..n-1
};

}  // namespace chassis
