#include "engine/generate.h"

#include <chrono>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace chassis {

std::string Utf8Stream::push(const std::string& piece) {
  pending_ += piece;
  const size_t keep = utf8_incomplete_tail(pending_);
  std::string out = utf8_sanitize(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string Utf8Stream::flush() {
  std::string out = utf8_sanitize(pending_);
  pending_.clear();
  return out;
}

namespace {
// Most prompt tokens in one pass. The pass's scratch grows with it (Llama-3.2-1B: 144 KiB a token),
// and the kernels gain nothing past 128: prefill of 512 tokens in passes of 128 against 512, one
// process, A/B: 0.97-1.06 over eight models (Qwen2.5-0.5B, Llama-3.2-1B x F16, Q8_0, Q4_0, Q4_K_M).
constexpr int64_t kMaxBatch = 128;
double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

Session::Session(const Model& model, int64_t n_ctx, int n_threads, bool kv_f32)
    : model_(model),
      pool_(n_threads),
      cache_(model.config().n_layer, n_ctx, model.config().n_head_kv, model.config().head_dim, kv_f32),
      transformer_(model.config(), model.weights(), pool_, std::min<int64_t>(kMaxBatch, n_ctx)),
      logits_(size_t(model.config().n_vocab)) {}

const std::vector<float>& Session::evaluate(const std::vector<int32_t>& tokens, int64_t pos0) {
  cached_.clear();  // the caller manages positions; nothing is known to be reusable afterwards
  transformer_.forward(tokens.data(), int64_t(tokens.size()), pos0, cache_, logits_.data(), false);
  return logits_;
}

GenerateResult Session::generate(const GenerateRequest& req, const std::function<bool(const TokenEvent&)>& on_token) {
  const TextTokenizer& vocab = model_.tokenizer();
  const int64_t n_vocab = model_.config().n_vocab;
  if (req.prompt.empty()) throw Error("the prompt is empty (and the model adds no BOS token)");
  if (int64_t(req.prompt.size()) > n_ctx())
    throw Error("the prompt has " + std::to_string(req.prompt.size()) + " tokens, more than the context size " +
                std::to_string(n_ctx()) + " (raise it with -c)");

  GenerateResult res;
  auto t0 = std::chrono::steady_clock::now();
  size_t reused = 0;
  if (req.reuse_cached_prefix) {
    while (reused < cached_.size() && reused < req.prompt.size() && cached_[reused] == req.prompt[reused]) ++reused;
    if (reused == req.prompt.size()) --reused;  // the last prompt token must run to give logits
  }
  cached_.assign(req.prompt.begin(), req.prompt.begin() + static_cast<long>(reused));
  transformer_.forward(req.prompt.data() + reused, int64_t(req.prompt.size() - reused), int64_t(reused), cache_,
                       logits_.data(), false);
  cached_ = req.prompt;
  res.prompt_ms = ms_since(t0);
  res.prompt_tokens_reused = reused;

  Sampler sampler(req.sampling);
  std::vector<int32_t> history = req.prompt;
  Utf8Stream stream;
  int64_t pos = int64_t(req.prompt.size());
  auto t1 = std::chrono::steady_clock::now();
  res.stop_reason = "limit";
  for (int i = 0; req.n_predict < 0 || i < req.n_predict; ++i) {
    const int32_t id = sampler.sample(logits_.data(), n_vocab, history);
    TokenEvent ev;
    ev.id = id;
    // Only on request: a log-softmax over a 152k vocabulary is ~4 ms, 5 % of a small model's step.
    ev.logprob = req.logprob || req.n_logprobs > 0 ? token_logprob(logits_.data(), n_vocab, id) : 0.0f;
    if (req.n_logprobs > 0) ev.top = top_logprobs(logits_.data(), n_vocab, req.n_logprobs);
    res.tokens.push_back(id);
    history.push_back(id);
    const bool eog = vocab.is_eog(id);
    // The end-of-generation token ends the text; its own text ("</s>", "<|im_end|>") is not output.
    ev.text = eog ? stream.flush() : stream.push(vocab.token_to_piece(id));
    res.text += ev.text;
    const bool keep_going = !on_token || on_token(ev);
    res.events.push_back(std::move(ev));
    if (eog) {
      res.stop_reason = "eos";
      break;
    }
    if (!keep_going) {
      res.stop_reason = "cancelled";
      break;
    }
    if (req.n_predict >= 0 && i + 1 >= req.n_predict) break;
    if (pos >= n_ctx()) {
      res.stop_reason = "context";
      break;
    }
    transformer_.forward(&id, 1, pos, cache_, logits_.data(), false);
    cached_.push_back(id);
    ++pos;
  }
  const std::string tail = stream.flush();
  if (!tail.empty()) {
    res.text += tail;
    if (on_token) on_token(TokenEvent{-1, tail, 0, {}});
  }
  res.generate_ms = ms_since(t1);
  return res;
}

}  // namespace chassis
