// Chat template rendering with transformers' variables: messages, tools, documents,
// add_generation_prompt, the special tokens, then the caller's extra variables (which win).
#include "tokenizer/chat_template.h"

#include "core/error.h"

namespace chassis {
namespace {

std::string describe(const std::string& origin, const jinja::TemplateError& e) {
  std::string where = origin + ": chat template";
  if (e.line > 0) where += " line " + std::to_string(e.line);
  return where + ": " + e.what();
}

jinja::Template compile(const std::string& source, const std::string& origin) {
  try {
    return jinja::Template::parse(source);
  } catch (const jinja::TemplateError& e) {
    throw Error(describe(origin, e));
  }
}

}  // namespace

ChatTemplate::ChatTemplate(std::string source, jinja::Dict special_tokens, std::string origin)
    : source_(std::move(source)),
      special_tokens_(std::move(special_tokens)),
      origin_(std::move(origin)),
      template_(compile(source_, origin_)) {}

std::string ChatTemplate::apply(const ChatRequest& request) const {
  jinja::Dict vars;
  vars.set("messages", request.messages);
  vars.set("tools", request.tools);
  vars.set("documents", request.documents);
  vars.set("add_generation_prompt", jinja::Value(request.add_generation_prompt));
  for (const auto& [k, v] : special_tokens_.items) vars.set(k, v);
  for (const auto& [k, v] : request.extra.items) vars.set(k, v);
  try {
    return template_.render(vars);
  } catch (const jinja::TemplateError& e) {
    throw Error(describe(origin_, e));
  }
}

}  // namespace chassis
