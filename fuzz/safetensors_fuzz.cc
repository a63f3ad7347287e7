// libFuzzer target: arbitrary bytes through the safetensors reader, then every tensor's bytes read
// (an out-of-range view would be reported by ASan). Only chassis::Error may escape.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chassis;
  try {
    SafetensorsFile f = SafetensorsFile::parse(data, size, "fuzz");
    volatile uint8_t sink = 0;
    for (const auto& t : f.tensors()) {
      const uint8_t* p = f.tensor_data(t);
      for (uint64_t i = 0; i < t.end - t.begin; ++i) sink = sink ^ p[i];
    }
  } catch (const Error&) {
  }
  return 0;
}
