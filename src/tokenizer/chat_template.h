// A model's chat template: renders a conversation into the prompt text the model was trained on,
// exactly as transformers' apply_chat_template renders it (same variables, same Jinja semantics).
#pragma once
#include <string>

#include "tokenizer/jinja/template.h"

namespace chassis {

// One render request. Values are Jinja values so that any message shape a client sends (content
// parts, tool_calls with arbitrary arguments, reasoning_content, ...) reaches the template intact.
struct ChatRequest {
  jinja::Value messages = jinja::Value::list();
  jinja::Value tools = jinja::Value::none();     // None when the request has no tools, as transformers passes
  jinja::Value documents = jinja::Value::none();
  bool add_generation_prompt = true;
  jinja::Dict extra;  // further template variables (enable_thinking, date_string, ...)
};

class ChatTemplate {
 public:
  // `special_tokens`: bos_token, eos_token, ... as transformers' special_tokens_map gives them.
  // `origin` names where the template came from, for error messages. Throws Error on a syntax error.
  ChatTemplate(std::string source, jinja::Dict special_tokens, std::string origin);

  // Throws Error naming the origin and template line on a render error or raise_exception().
  std::string apply(const ChatRequest& request) const;

  const std::string& source() const { return source_; }

 private:
  std::string source_;
  jinja::Dict special_tokens_;
  std::string origin_;
  jinja::Template template_;
};

}  // namespace chassis
