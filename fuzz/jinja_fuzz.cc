// libFuzzer target: arbitrary bytes as a chat template (GGUF files and HF folders carry templates
// from strangers), parsed and rendered over a small conversation. Only chassis::Error may escape;
// a crash, a hang past the render limits, or a sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chassis;
  using jinja::Value;
  static const Value messages = [] {
    jinja::List list;
    for (const char* role : {"system", "user", "assistant", "user"}) {
      jinja::Dict m;
      m.set("role", Value(role));
      m.set("content", Value(std::string("hi from ") + role));
      list.push_back(Value::dict(std::move(m)));
    }
    return Value::list(std::move(list));
  }();
  try {
    jinja::Dict special;
    special.set("bos_token", Value("<s>"));
    ChatTemplate t(std::string(reinterpret_cast<const char*>(data), size), special, "fuzz");
    ChatRequest request;
    request.messages = messages;
    (void)t.apply(request);
  } catch (const Error&) {
  }
  return 0;
}
