// libFuzzer target: arbitrary bytes through the GGUF reader and everything that consumes its
// output (tokenizer construction and use, typed config, weight binding). Only chassis::Error may
// escape the library; anything else (a crash, a sanitizer report, another exception) is a bug.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/gguf.h"
#include "models/config.h"
#include "models/weights.h"
#include "tokenizer/vocab.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chassis;
  GgufFile f;
  try {
    f = GgufFile::parse(data, size, "fuzz");
  } catch (const Error&) {
    return 0;
  }
  try {
    const Vocab v = Vocab::from_gguf(f);
    const auto ids = v.tokenize("Hello, world! <s> 123 \xE2\x96\x81 caf\xC3\xA9", true, true);
    (void)v.detokenize(ids);
  } catch (const Error&) {
  }
  try {
    ModelConfig c = config_from_gguf(f);
    f.check_all_tensor_bounds();
    (void)load_weights(f, c);
  } catch (const Error&) {
  }
  return 0;
}
