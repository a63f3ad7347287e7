#include "server/openai_api.h"

#include <cmath>
#include <limits>

#include "tokenizer/jinja/json_value.h"

namespace chassis::server {

HttpError::HttpError(int status_, std::string message_, std::string param_, std::string code_)
    : status(status_), message(std::move(message_)), param(std::move(param_)), code(std::move(code_)) {
  switch (status) {
    case 401: type = "authentication_error"; break;
    case 404: type = "not_found_error"; break;
    case 413: type = "invalid_request_error"; break;
    case 429: type = "rate_limit_error"; break;
    case 503: type = "server_error"; break;
    default: type = status >= 500 ? "server_error" : "invalid_request_error";
  }
}

Json error_body(const HttpError& e) {
  Json err = {{"message", e.message}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return Json{{"error", err}};
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

namespace {

HttpError bad_field(const std::string& name, const std::string& what) {
  return HttpError(400, "'" + name + "' " + what, name, "invalid_value");
}

// A field that is present and not null (OpenAI treats null as absent).
const Json* field(const Json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> number(const Json& obj, const char* name, double lo, double hi) {
  const Json* f = field(obj, name);
  if (!f) return std::nullopt;
  if (!f->is_number()) throw bad_field(name, "must be a number");
  const double v = f->get<double>();
  if (!(v >= lo && v <= hi)) throw bad_field(name, "must be between " + Json(lo).dump() + " and " + Json(hi).dump());
  return v;
}

std::optional<int64_t> integer(const Json& obj, const char* name, int64_t lo, int64_t hi) {
  const Json* f = field(obj, name);
  if (!f) return std::nullopt;
  if (f->is_number_float()) {
    const double d = f->get<double>();
    if (d != std::floor(d)) throw bad_field(name, "must be an integer");
  } else if (!f->is_number_integer()) {
    throw bad_field(name, "must be an integer");
  }
  if (f->is_number_unsigned() && f->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    throw bad_field(name, "must be at most " + std::to_string(hi));
  const double d = f->get<double>();
  if (d < double(lo) || d > double(hi))
    throw bad_field(name, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return f->is_number_float() ? int64_t(d) : f->get<int64_t>();
}

std::optional<bool> boolean(const Json& obj, const char* name) {
  const Json* f = field(obj, name);
  if (!f) return std::nullopt;
  if (!f->is_boolean()) throw bad_field(name, "must be a boolean");
  return f->get<bool>();
}

std::optional<std::string> string(const Json& obj, const char* name) {
  const Json* f = field(obj, name);
  if (!f) return std::nullopt;
  if (!f->is_string()) throw bad_field(name, "must be a string");
  return f->get<std::string>();
}

GenerationParams parse_generation(const Json& b) {
  GenerationParams g;
  const auto model = string(b, "model");
  if (!model || model->empty()) throw HttpError(400, "'model' is required", "model", "missing_required_parameter");
  g.model = *model;
  const int64_t kMaxTokens = 1 << 24;
  if (auto v = integer(b, "max_tokens", 0, kMaxTokens)) g.max_tokens = int(*v);
  if (auto v = integer(b, "max_completion_tokens", 0, kMaxTokens)) g.max_tokens = int(*v);
  // OpenAI's defaults: temperature 1, top_p 1, no other truncation; the model's recommendation
  // (generation_config.json) replaces them, and what the request sets replaces both.
  g.sampling.temperature = 1.0f;
  g.sampling.top_p = 1.0f;
  g.sampling.top_k = 0;
  g.sampling.min_p = 0.0f;
  if (auto v = number(b, "temperature", 0, 2)) g.requested.temperature = float(*v);
  if (auto v = number(b, "top_p", 0, 1)) g.requested.top_p = float(*v);
  if (auto v = number(b, "presence_penalty", -2, 2)) g.sampling.presence_penalty = float(*v);
  if (auto v = number(b, "frequency_penalty", -2, 2)) g.sampling.frequency_penalty = float(*v);
  // llama.cpp's extensions, which many local clients send.
  if (auto v = integer(b, "top_k", 0, 1 << 20)) g.requested.top_k = int(*v);
  if (auto v = number(b, "min_p", 0, 1)) g.requested.min_p = float(*v);
  if (auto v = number(b, "repeat_penalty", 0, 10)) g.requested.repeat_penalty = float(*v);
  if (auto v = integer(b, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())) {
    g.sampling.seed = uint64_t(*v);
    g.seed_given = true;
  }
  if (const Json* s = field(b, "stop")) {
    if (s->is_string()) {
      g.stop.push_back(s->get<std::string>());
    } else if (s->is_array()) {
      if (s->size() > 16) throw bad_field("stop", "may hold at most 16 strings");
      for (const auto& x : *s) {
        if (!x.is_string()) throw bad_field("stop", "must be a string or an array of strings");
        g.stop.push_back(x.get<std::string>());
      }
    } else {
      throw bad_field("stop", "must be a string or an array of strings");
    }
  }
  if (auto v = integer(b, "n", 1, 16)) g.n = int(*v);
  if (auto v = boolean(b, "stream")) g.stream = *v;
  if (const Json* so = field(b, "stream_options")) {
    if (!so->is_object()) throw bad_field("stream_options", "must be an object");
    if (auto v = boolean(*so, "include_usage")) g.include_usage = *v;
  }
  return g;
}

// Text of a message's content: a string, or an array of text parts (joined as llama.cpp joins them).
jinja::Value content_value(const Json& content, size_t i) {
  const std::string name = "messages[" + std::to_string(i) + "].content";
  if (content.is_string()) return jinja::Value(content.get<std::string>());
  if (!content.is_array()) throw bad_field(name, "must be a string or an array of content parts");
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      throw bad_field(name, "parts must be objects with a 'type'");
    if (part["type"] != "text")
      throw HttpError(400, name + ": content of type '" + part["type"].get<std::string>() +
                               "' is not supported (this server takes text)", name, "unsupported_content");
    if (!part.contains("text") || !part["text"].is_string()) throw bad_field(name, "text parts need a string 'text'");
    if (!text.empty()) text += "\n";
    text += part["text"].get<std::string>();
  }
  return jinja::Value(text);
}

}  // namespace

Json parse_body(const std::string& body) {
  Json j;
  try {
    j = Json::parse(body);
  } catch (const std::exception& e) {
    throw HttpError(400, std::string("the request body is not valid JSON: ") + e.what(), "", "invalid_json");
  }
  if (!j.is_object()) throw HttpError(400, "the request body must be a JSON object", "", "invalid_json");
  return j;
}

ChatParams parse_chat_request(const Json& b) {
  ChatParams p;
  p.gen = parse_generation(b);
  if (auto v = boolean(b, "logprobs")) p.gen.logprobs = *v;
  if (auto v = integer(b, "top_logprobs", 0, 20)) {
    p.gen.top_logprobs = int(*v);
    if (!p.gen.logprobs && *v > 0) throw bad_field("top_logprobs", "needs 'logprobs': true");
  }
  const Json* msgs = field(b, "messages");
  if (!msgs) throw HttpError(400, "'messages' is required", "messages", "missing_required_parameter");
  if (!msgs->is_array() || msgs->empty()) throw bad_field("messages", "must be a non-empty array");
  Json messages = Json::array();
  for (size_t i = 0; i < msgs->size(); ++i) {
    const Json& m = (*msgs)[i];
    const std::string name = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw bad_field(name, "must be an object");
    if (!m.contains("role") || !m["role"].is_string()) throw bad_field(name + ".role", "must be a string");
    Json msg = m;
    // Templates index arguments as a mapping (tool_call.arguments | tojson, .items()); OpenAI clients
    // send them as a JSON string: hand the template the object when the string holds one.
    if (msg.contains("tool_calls") && msg["tool_calls"].is_array()) {
      for (auto& call : msg["tool_calls"]) {
        if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) continue;
        auto& fn = call["function"];
        if (fn.contains("arguments") && fn["arguments"].is_string()) {
          Json args = Json::parse(fn["arguments"].get<std::string>(), nullptr, false);
          if (args.is_object()) fn["arguments"] = args;
        }
      }
    }
    messages.push_back(std::move(msg));
  }
  p.chat.messages = jinja::from_json(messages);
  // Content parts are flattened to text after the conversion (templates expect strings).
  for (size_t i = 0; i < msgs->size(); ++i) {
    const Json& c = (*msgs)[i].contains("content") ? (*msgs)[i]["content"] : Json();
    if (c.is_null()) continue;
    p.chat.messages.mutable_items()[i].mutable_entries().set("content", content_value(c, i));
  }
  if (const Json* tools = field(b, "tools")) {
    if (!tools->is_array()) throw bad_field("tools", "must be an array");
    if (!tools->empty()) p.chat.tools = jinja::from_json(*tools);
  }
  if (const Json* tc = field(b, "tool_choice")) {
    if (!(tc->is_string() && (*tc == "auto" || *tc == "none")))
      throw HttpError(400, "'tool_choice' other than \"auto\" or \"none\" is not supported yet", "tool_choice",
                      "unsupported_value");
    if (*tc == "none") p.chat.tools = jinja::Value::none();
  }
  if (const Json* rf = field(b, "response_format")) {
    if (!rf->is_object() || !rf->contains("type") || !(*rf)["type"].is_string())
      throw bad_field("response_format", "must be an object with a 'type'");
    if ((*rf)["type"] != "text")
      throw HttpError(400, "'response_format' of type '" + (*rf)["type"].get<std::string>() +
                               "' is not supported yet (constrained decoding is not built)",
                      "response_format", "unsupported_value");
  }
  // Template variables some models read (Qwen3's enable_thinking), as llama.cpp's server takes them.
  if (const Json* kw = field(b, "chat_template_kwargs")) {
    if (!kw->is_object()) throw bad_field("chat_template_kwargs", "must be an object");
    for (auto it = kw->begin(); it != kw->end(); ++it) p.chat.extra.set(it.key(), jinja::from_json(it.value()));
  }
  return p;
}

CompletionParams parse_completion_request(const Json& b) {
  CompletionParams p;
  p.gen = parse_generation(b);
  if (auto v = integer(b, "logprobs", 0, 5)) {
    p.gen.logprobs = true;
    p.gen.top_logprobs = int(*v);
  }
  if (auto v = boolean(b, "echo")) p.echo = *v;
  const Json* prompt = field(b, "prompt");
  if (!prompt) throw HttpError(400, "'prompt' is required", "prompt", "missing_required_parameter");
  auto token_list = [&](const Json& arr) {
    std::vector<int32_t> ids;
    for (const auto& t : arr) {
      if (!t.is_number_integer()) throw bad_field("prompt", "must be a string, an array of strings, or token ids");
      const int64_t v = t.get<int64_t>();
      if (v < 0 || v > std::numeric_limits<int32_t>::max()) throw bad_field("prompt", "holds a token id out of range");
      ids.push_back(int32_t(v));
    }
    return ids;
  };
  if (prompt->is_string()) {
    p.text_prompts.push_back(prompt->get<std::string>());
  } else if (prompt->is_array() && !prompt->empty()) {
    if ((*prompt)[0].is_number()) {
      p.token_prompts.push_back(token_list(*prompt));
    } else {
      for (const auto& x : *prompt) {
        if (x.is_string()) p.text_prompts.push_back(x.get<std::string>());
        else if (x.is_array()) p.token_prompts.push_back(token_list(x));
        else throw bad_field("prompt", "must be a string, an array of strings, or token ids");
      }
      if (!p.text_prompts.empty() && !p.token_prompts.empty())
        throw bad_field("prompt", "mixes strings and token arrays");
    }
  } else {
    throw bad_field("prompt", "must be a string, an array of strings, or token ids");
  }
  if (p.text_prompts.size() + p.token_prompts.size() > 16) throw bad_field("prompt", "may hold at most 16 prompts");
  return p;
}

Json usage_json(const Usage& u) {
  return Json{{"prompt_tokens", u.prompt_tokens},
              {"completion_tokens", u.completion_tokens},
              {"total_tokens", u.prompt_tokens + u.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

namespace {
Json bytes_of(const std::string& s) {
  Json b = Json::array();
  for (unsigned char c : s) b.push_back(int(c));
  return b;
}
}  // namespace

Json chat_logprobs(const std::vector<TokenEvent>& tokens, const TextTokenizer& tok, bool with_top) {
  Json content = Json::array();
  for (const auto& t : tokens) {
    if (t.id < 0) continue;  // a text-only tail, not a token
    const std::string piece = tok.token_to_piece(t.id);
    Json e = {{"token", piece}, {"logprob", t.logprob}, {"bytes", bytes_of(piece)}, {"top_logprobs", Json::array()}};
    if (with_top)
      for (const auto& [id, lp] : t.top) {
        const std::string p = tok.token_to_piece(id);
        e["top_logprobs"].push_back({{"token", p}, {"logprob", lp}, {"bytes", bytes_of(p)}});
      }
    content.push_back(std::move(e));
  }
  return Json{{"content", content}, {"refusal", nullptr}};
}

Json completion_logprobs(const std::vector<TokenEvent>& tokens, const TextTokenizer& tok, size_t text_offset0) {
  Json out = {{"tokens", Json::array()}, {"token_logprobs", Json::array()}, {"top_logprobs", Json::array()},
              {"text_offset", Json::array()}};
  size_t offset = text_offset0;
  for (const auto& t : tokens) {
    if (t.id < 0) continue;
    const std::string piece = tok.token_to_piece(t.id);
    out["tokens"].push_back(piece);
    out["token_logprobs"].push_back(t.logprob);
    Json top = Json::object();
    for (const auto& [id, lp] : t.top) top[tok.token_to_piece(id)] = lp;
    out["top_logprobs"].push_back(top);
    out["text_offset"].push_back(offset);
    offset += piece.size();
  }
  return out;
}

std::string openai_finish_reason(const std::string& r) { return r == "length" ? "length" : "stop"; }

}  // namespace chassis::server
