// libFuzzer target: arbitrary bytes as a tokenizer.model's protobuf, through the reader of its trainer
// and normalizer settings (convert reads them before libsentencepiece does). Only chassis::Error may
// escape.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "engine/sentencepiece_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)chassis::read_sentencepiece_spec(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const chassis::Error&) {
  }
  return 0;
}
