// libFuzzer target: arbitrary bytes as a tokenizer.json (model folders come from strangers), then an
// encode/decode round on a fixed text. Only chassis::Error may escape.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "tokenizer/hf/hf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chassis;
  try {
    auto t = hf::Tokenizer::from_json(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    const auto ids = t.encode("Hello, wörld! <s> 123 \xF0\x9F\x99\x82 \t\n end", true);
    (void)t.decode(ids);
  } catch (const Error&) {
  }
  return 0;
}
