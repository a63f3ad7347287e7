// The OpenAI API at the edge: request bodies parsed into typed structs (wrong types are a 400 naming
// the field; unknown fields are ignored, as OpenAI ignores them) and engine results turned back into
// OpenAI's response objects. Nothing past this file sees JSON.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/batch_engine.h"
#include "tokenizer/chat_template.h"

namespace chassis::server {

using Json = nlohmann::ordered_json;

// An error answered in OpenAI's shape {"error": {"message", "type", "param", "code"}}.
struct HttpError : std::exception {
  HttpError(int status, std::string message, std::string param = {}, std::string code = {});
  const char* what() const noexcept override { return message.c_str(); }
  int status;
  std::string message, type, param, code;
  int retry_after_s = 0;  // > 0: sent as Retry-After
};

Json error_body(const HttpError& e);
// Serializes for the wire; invalid UTF-8 (a token's partial bytes) becomes U+FFFD, never an exception.
std::string dump(const Json& j);

// The sampling and length fields the two completion routes share.
struct GenerationParams {
  std::string model;
  int max_tokens = -1;  // absent: until end of generation or the context's end
  SamplingParams sampling;    // OpenAI's defaults, the penalties and the seed
  SamplingChoices requested;  // sampling settings the request gave (over the model's recommendation)
  bool seed_given = false;
  std::vector<std::string> stop;
  int n = 1;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;
  int top_logprobs = 0;
};

struct ChatParams {
  GenerationParams gen;
  ChatRequest chat;  // messages and tools, ready for the template
};

struct CompletionParams {
  GenerationParams gen;
  // Each prompt is text or token ids.
  std::vector<std::string> text_prompts;
  std::vector<std::vector<int32_t>> token_prompts;
  bool echo = false;
};

// Parse a request body; throw HttpError(400) naming the offending field.
Json parse_body(const std::string& body);
ChatParams parse_chat_request(const Json& body);
CompletionParams parse_completion_request(const Json& body);

// Accumulates one choice's tokens for a response.
struct ChoiceResult {
  std::string text;
  std::string finish_reason;  // OpenAI's: "stop" or "length"
  std::vector<TokenEvent> tokens;
  SequenceStats stats;
};

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};
Json usage_json(const Usage& u);

// OpenAI's logprobs objects: chat's {"content": [...]}, completions' {"tokens", "token_logprobs", ...}.
Json chat_logprobs(const std::vector<TokenEvent>& tokens, const TextTokenizer& tok, bool with_top);
Json completion_logprobs(const std::vector<TokenEvent>& tokens, const TextTokenizer& tok, size_t text_offset0);

// Finish reasons as OpenAI names them ("cancelled" and "error" never reach a client).
std::string openai_finish_reason(const std::string& engine_reason);

}  // namespace chassis::server
