// Turning logits into the next token: repetition penalty, top-k, top-p, min-p, temperature and a
// seeded draw, in llama.cpp's order; greedy (argmax) at temperature 0. An optional mask of allowed
// tokens is the seam for constrained decoding.
#pragma once
#include <cstdint>
#include <optional>
#include <random>
#include <utility>
#include <vector>

namespace chassis {

struct SamplingParams {
  float temperature = 0.8f;  // <= 0: greedy
  int top_k = 40;            // <= 0: off
  float top_p = 0.95f;       // >= 1: off
  float min_p = 0.05f;       // <= 0: off
  float repeat_penalty = 1.0f;
  // OpenAI's penalties: logit -= count * frequency_penalty + (count > 0) * presence_penalty, where
  // count is how often the token occurs in the last repeat_last_n tokens (as llama.cpp applies them).
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int repeat_last_n = 64;  // < 0: the whole history
  uint64_t seed = 0;
};

// Sampling settings that may or may not be given: a model's recommendation (generation_config.json,
// GGUF general.sampling.*) or what a user or request set explicitly. Layered over built-in defaults:
// built-in < model < explicit.
struct SamplingChoices {
  std::optional<float> temperature, top_p, min_p, repeat_penalty;
  std::optional<int> top_k;
  bool empty() const { return !temperature && !top_p && !min_p && !repeat_penalty && !top_k; }
  void apply_to(SamplingParams& p) const {
    if (temperature) p.temperature = *temperature;
    if (top_k) p.top_k = *top_k;
    if (top_p) p.top_p = *top_p;
    if (min_p) p.min_p = *min_p;
    if (repeat_penalty) p.repeat_penalty = *repeat_penalty;
  }
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);

  // Picks a token from logits (n_vocab). `recent` is the token history for the repetition penalty;
  // `allowed`, when non-null, masks out every token whose entry is 0.
  int32_t sample(const float* logits, int64_t n_vocab, const std::vector<int32_t>& recent,
                 const std::vector<uint8_t>* allowed = nullptr);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> cand_;
};

// log-softmax of raw logits: the k most likely (id, logprob), best first; and the logprob of `id`.
std::vector<std::pair<int32_t, float>> top_logprobs(const float* logits, int64_t n_vocab, int k);
float token_logprob(const float* logits, int64_t n_vocab, int32_t id);

}  // namespace chassis
