#include "server/generation.h"

#include <random>

namespace chassis::server {

std::string new_request_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += hex[rng() & 15];
  return id;
}

void Job::submit(const std::vector<std::vector<int32_t>>& prompts) {
  const BatchEngine& engine = *lm->engine;
  for (size_t p = 0; p < prompts.size(); ++p) {
    const int64_t n = int64_t(prompts[p].size());
    if (n == 0) throw HttpError(400, "the prompt is empty", "prompt", "empty_prompt");
    if (n >= engine.n_ctx())
      throw HttpError(400, "the prompt has " + std::to_string(n) + " tokens but the context of '" + lm->id +
                               "' holds " + std::to_string(engine.n_ctx()) +
                               " (one position must stay free for the reply); shorten it or start the server "
                               "with a larger -c",
                      chat ? "messages" : "prompt", "context_length_exceeded");
    prompt_tokens.push_back(n);
  }
  static thread_local std::mt19937_64 seeds{std::random_device{}()};
  for (size_t p = 0; p < prompts.size(); ++p) {
    for (int j = 0; j < gen.n; ++j) {
      CompletionRequest r;
      r.prompt = prompts[p];
      r.max_tokens = gen.max_tokens;
      r.sampling = gen.sampling;
      lm->model->sampling_defaults().apply_to(r.sampling);
      gen.requested.apply_to(r.sampling);
      // Choices of one request differ; with a seed they are still reproducible.
      r.sampling.seed = gen.seed_given ? gen.sampling.seed + uint64_t(j) : seeds();
      r.stop = gen.stop;
      r.logprobs = gen.logprobs;
      r.n_logprobs = gen.logprobs ? gen.top_logprobs : 0;
      try {
        seqs.push_back(lm->engine->submit(std::move(r)));
      } catch (const QueueFull& e) {
        cancel();
        HttpError err(429, std::string(e.what()) + "; retry shortly", "", "queue_full");
        err.retry_after_s = 1;
        throw err;
      } catch (const Error& e) {
        cancel();
        throw HttpError(400, e.what(), chat ? "messages" : "prompt", "invalid_prompt");
      }
      prompt_of.push_back(p);
      results.emplace_back();
      done.push_back(false);
    }
  }
}

void Job::cancel() {
  for (auto& s : seqs) s->cancel();
}

bool Job::pump(const ClientConnection& conn, const std::function<bool(size_t, const SequenceEvent&)>& on_event) {
  SequenceEvent ev;
  auto handle = [&](size_t i) {
    ChoiceResult& r = results[i];
    if (ev.kind == SequenceEvent::Kind::Token) {
      r.text += ev.token.text;
      r.tokens.push_back(ev.token);
    } else {
      r.finish_reason = ev.finish_reason;
      r.stats = ev.stats;
      done[i] = true;
    }
    return on_event(i, ev);
  };
  for (;;) {
    bool progress = false, all_done = true;
    for (size_t i = 0; i < seqs.size(); ++i) {
      while (!done[i] && seqs[i]->next_for(ev, std::chrono::milliseconds(0))) {
        progress = true;
        if (!handle(i)) return cancel(), false;
      }
      all_done = all_done && done[i];
    }
    if (all_done) return true;
    if (progress) continue;
    size_t wait_on = 0;
    while (done[wait_on]) ++wait_on;
    if (seqs[wait_on]->next_for(ev, std::chrono::milliseconds(50))) {
      if (!handle(wait_on)) return cancel(), false;
    } else if (conn.closed()) {
      cancel();
      return false;
    }
  }
}

Usage Job::usage() const {
  Usage u;
  for (int64_t n : prompt_tokens) u.prompt_tokens += n;
  std::vector<int64_t> cached(prompt_tokens.size(), 0);
  for (size_t i = 0; i < results.size(); ++i) {
    u.completion_tokens += results[i].stats.completion_tokens;
    cached[prompt_of[i]] = std::max(cached[prompt_of[i]], results[i].stats.cached_tokens);
  }
  for (int64_t c : cached) u.cached_tokens += c;
  return u;
}

Json Job::response() const {
  const TextTokenizer& tok = lm->model->tokenizer();
  Json choices = Json::array();
  for (size_t i = 0; i < results.size(); ++i) {
    const ChoiceResult& r = results[i];
    Json c = {{"index", i}};
    if (chat) {
      c["message"] = {{"role", "assistant"}, {"content", r.text}, {"refusal", nullptr}};
      c["logprobs"] = gen.logprobs ? chat_logprobs(r.tokens, tok, gen.top_logprobs > 0) : Json();
    } else {
      const std::string& prefix = echo.empty() ? std::string() : echo[i];
      c["text"] = prefix + r.text;
      c["logprobs"] = gen.logprobs ? completion_logprobs(r.tokens, tok, prefix.size()) : Json();
    }
    c["finish_reason"] = openai_finish_reason(r.finish_reason);
    choices.push_back(std::move(c));
  }
  return Json{{"id", id},
              {"object", chat ? "chat.completion" : "text_completion"},
              {"created", created},
              {"model", lm->id},
              {"system_fingerprint", "chassis"},
              {"choices", choices},
              {"usage", usage_json(usage())}};
}

Json Job::chunk(size_t i, const SequenceEvent& ev, bool first) {
  const TextTokenizer& tok = lm->model->tokenizer();
  Json c = {{"index", i}};
  const bool token = ev.kind == SequenceEvent::Kind::Token;
  const std::vector<TokenEvent> one = token && ev.token.id >= 0 ? std::vector<TokenEvent>{ev.token}
                                                                 : std::vector<TokenEvent>{};
  if (chat) {
    Json delta = Json::object();
    if (first) delta["role"] = "assistant";
    if (token) delta["content"] = ev.token.text;
    else if (first) delta["content"] = "";
    c["delta"] = delta;
    c["logprobs"] = gen.logprobs && !one.empty() ? chat_logprobs(one, tok, gen.top_logprobs > 0) : Json();
  } else {
    std::string text = token ? ev.token.text : "";
    if (first && !echo.empty()) text = echo[i] + text;
    c["text"] = text;
    c["logprobs"] = gen.logprobs && !one.empty() ? completion_logprobs(one, tok, 0) : Json();
  }
  c["finish_reason"] = token ? Json() : Json(openai_finish_reason(ev.finish_reason));
  Json out = {{"id", id},
              {"object", chat ? "chat.completion.chunk" : "text_completion"},
              {"created", created},
              {"model", lm->id},
              {"system_fingerprint", "chassis"},
              {"choices", Json::array({c})}};
  if (gen.include_usage) out["usage"] = nullptr;
  return out;
}

Json Job::usage_chunk() const {
  return Json{{"id", id},
              {"object", chat ? "chat.completion.chunk" : "text_completion"},
              {"created", created},
              {"model", lm->id},
              {"system_fingerprint", "chassis"},
              {"choices", Json::array()},
              {"usage", usage_json(usage())}};
}

}  // namespace chassis::server
