// Where a model's weights come from, seen by the weight binder: tensors looked up by their GGUF
// name (blk.N.attn_q.weight, ...), with ggml-order dims, a dtype and a pointer into mapped memory.
// A GGUF file is one source; a Hugging Face folder of safetensors shards (names translated) another.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace chassis {

class GgufFile;

struct TensorRef {
  std::string name;         // as the source spells it (for error messages)
  std::vector<int64_t> ne;  // ggml order: ne[0] is the row length
  DType type;
  const uint8_t* data;
  uint64_t n_bytes;
  int64_t n_elements() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    return n;
  }
};

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual const std::string& label() const = 0;
  virtual std::optional<TensorRef> find(const std::string& gguf_name) const = 0;
};

// The tensors of a parsed GGUF file (bounds must have been checked).
class GgufTensors : public TensorSource {
 public:
  explicit GgufTensors(const GgufFile& f) : f_(f) {}
  const std::string& label() const override;
  std::optional<TensorRef> find(const std::string& gguf_name) const override;

 private:
  const GgufFile& f_;
};

}  // namespace chassis
