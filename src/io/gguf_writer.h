// Writing GGUF v3 files: metadata of the common value types and tensors, aligned as llama.cpp expects.
// The file is written to a temporary name and renamed into place, so a crash never leaves a partial
// file under the final name.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace chassis {

struct GgufValue;
struct GgufArray;

class GgufWriter {
 public:
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, const std::string& v);
  void add_strings(const std::string& key, const std::vector<std::string>& v);
  void add_f32s(const std::string& key, const std::vector<float>& v);
  void add_i32s(const std::string& key, const std::vector<int32_t>& v);
  // Any value read from another GGUF file (copying metadata), encoded as it was typed there.
  void add_value(const std::string& key, const GgufValue& v);

  // ne in ggml order (ne[0] = row length); data holds row_bytes(type, ne[0]) * rows bytes.
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, std::vector<uint8_t> data);
  // The same, with the bytes produced only while writing (so a multi-GB model is never held in memory).
  using Fill = std::function<void(std::vector<uint8_t>& out)>;
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, Fill fill);

  void write(const std::string& path) const;  // throws Error naming the path

 private:
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    uint64_t n_bytes;
    Fill fill;
  };
  void key(const std::string& k, uint32_t type);
  template <typename T>
  void put(T v);
  void put_string(const std::string& s);
  void put_scalar(uint32_t type, const GgufValue& v);
  void put_array(const GgufArray& a);

  std::vector<uint8_t> kv_;  // encoded key/value pairs
  uint64_t n_kv_ = 0;
  std::vector<Tensor> tensors_;
};

}  // namespace chassis
