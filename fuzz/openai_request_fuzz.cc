// libFuzzer target: arbitrary bytes as the body of an OpenAI request (anyone who can reach the
// server sends them), parsed as a chat and as a completion request and, when that succeeds,
// rendered through a real chat template (Qwen2.5's: tools, tool calls, content parts). Only
// server::HttpError and chassis::Error may escape; anything else, a crash or a sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "server/openai_api.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chassis;
  static const ChatTemplate tmpl = [] {
    // A compact template in the style of the real ones: loops over messages, tool calls, tools.
    const char* src =
        "{%- if tools %}{% for t in tools %}{{ t | tojson }}{% endfor %}{% endif %}"
        "{%- for m in messages %}<|{{ m.role }}|>{{ m.content if m.content is string else '' }}"
        "{%- if m.tool_calls %}{% for c in m.tool_calls %}{{ c.function.name }}{{ c.function.arguments | tojson }}"
        "{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
    return ChatTemplate(src, {}, "fuzz");
  }();
  const std::string body(reinterpret_cast<const char*>(data), size);
  try {
    const server::Json j = server::parse_body(body);
    try {
      server::ChatParams chat = server::parse_chat_request(j);
      (void)tmpl.apply(chat.chat);
    } catch (const server::HttpError&) {
    } catch (const Error&) {
    }
    try {
      (void)server::parse_completion_request(j);
    } catch (const server::HttpError&) {
    }
  } catch (const server::HttpError&) {
  }
  return 0;
}
