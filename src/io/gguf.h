// GGUF (v2, v3) reader over an in-memory byte range: metadata of every value type (nested arrays
// included), tensor infos and the aligned data section. Every length is checked against the bytes
// that remain before anything is allocated, so a hostile file cannot make it allocate gigabytes.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/dtype.h"

namespace chassis {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9,
  U64 = 10, I64 = 11, F64 = 12,
};
const char* gguf_type_name(GgufType t);
size_t gguf_type_size(GgufType t);  // bytes of one fixed-size element (0 for strings and arrays)

struct GgufValue;

// An array value. Elements are views into the parsed bytes, not copies: fixed-size elements stay
// packed where the file has them and strings are views, so memory stays proportional to the file
// (a hostile "array of a billion u8" costs nothing but the bytes it really has).
struct GgufArray {
  GgufType elem_type = GgufType::U8;
  uint64_t count = 0;
  const uint8_t* raw = nullptr;            // fixed-size element types: `count` packed little-endian values
  std::vector<std::string_view> strings;   // String elements
  std::vector<GgufArray> arrays;           // Array elements

  size_t size() const { return static_cast<size_t>(count); }
  bool elem_is_number() const;
  int64_t int_at(size_t i) const;          // integer (or bool) elements
  double number_at(size_t i) const;        // any numeric element
  std::string_view string_at(size_t i) const;
  GgufValue at(size_t i) const;            // one element as a value (nested arrays are copied)
};

struct GgufValue {
  GgufType type = GgufType::U8;
  std::variant<uint64_t, int64_t, double, bool, std::string_view, GgufArray> v;

  bool is_integer() const;
  bool is_number() const { return is_integer() || type == GgufType::F32 || type == GgufType::F64; }
  int64_t as_int() const;   // any integer type (or bool)
  double as_double() const; // any numeric type
  std::string_view as_string() const;
  const GgufArray& as_array() const;
  std::string to_display(size_t max_items = 8) const;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the row length (fastest-varying)
  DType type;
  uint64_t offset;  // from the start of the data section
  uint64_t n_bytes;
  int64_t n_elements() const;
};

// The parsed header of a GGUF file. String and array values are views into the bytes given to
// parse(), which must outlive the GgufFile (Model keeps the mapping alive alongside it).
class GgufFile {
 public:
  // Parses the header; `label` (usually the path) prefixes every error message.
  static GgufFile parse(const uint8_t* data, size_t size, const std::string& label);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::string& label() const { return label_; }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;

  // Typed getters; `required` ones throw "<label>: missing required key 'k'".
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  std::optional<bool> get_bool(const std::string& key) const;
  int64_t require_int(const std::string& key) const;
  std::string require_string(const std::string& key) const;

  // Pointer to a tensor's bytes; throws if they run past the end of the file. Checked here and not
  // at parse time so a vocab-only or truncated file still yields its tokenizer.
  const uint8_t* tensor_data(const GgufTensorInfo& t) const;
  void check_all_tensor_bounds() const;

 private:
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::string label_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace chassis
