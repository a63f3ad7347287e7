#include "io/gguf.h"

#include <cstring>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace chassis {
namespace {

constexpr int kMaxArrayDepth = 8;    // nested arrays deeper than this are hostile, not useful
constexpr uint64_t kMaxNestedArrays = 1 << 20;  // arrays-of-arrays cost memory per element: cap them
constexpr uint32_t kMaxDims = 4;     // ggml tensors have at most 4 dimensions

// Bounds-checked little-endian cursor over the header bytes.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n, const std::string& label) : p_(p), n_(n), label_(label) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return n_ - pos_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(label_ + ": " + what + " (at byte " + std::to_string(pos_) + ")");
  }

  void need(size_t k, const char* what) const {
    if (k > remaining())
      fail(std::string("file is truncated: needs ") + std::to_string(k) + " more bytes for " + what +
           ", " + std::to_string(remaining()) + " left");
  }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string_view read_string(const char* what) {
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining())
      fail(std::string("string length ") + std::to_string(len) + " of " + what + " runs past the end of the file");
    std::string_view s(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

  const uint8_t* take(size_t n) {
    const uint8_t* p = p_ + pos_;
    pos_ += n;
    return p;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  const std::string& label_;
};

// Bytes of one element of a fixed-size type (0 for strings and arrays).
size_t fixed_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;
  }
}

}  // namespace

size_t gguf_type_size(GgufType t) { return fixed_size(t); }

namespace {

// Smallest encoding of one value of type t: used to reject array counts the file cannot hold.
size_t min_encoded_size(GgufType t) {
  if (t == GgufType::String) return 8;   // the length
  if (t == GgufType::Array) return 12;   // element type + count
  return fixed_size(t);
}

bool valid_type(uint32_t t) { return t <= 12; }

GgufArray read_array(Cursor& c, int depth, const std::string& key, uint64_t& nested_budget);

GgufValue read_value(Cursor& c, GgufType type, int depth, const std::string& key, uint64_t& nested_budget) {
  GgufValue out;
  out.type = type;
  switch (type) {
    case GgufType::U8: out.v = uint64_t(c.read<uint8_t>("a u8 value")); break;
    case GgufType::I8: out.v = int64_t(c.read<int8_t>("an i8 value")); break;
    case GgufType::U16: out.v = uint64_t(c.read<uint16_t>("a u16 value")); break;
    case GgufType::I16: out.v = int64_t(c.read<int16_t>("an i16 value")); break;
    case GgufType::U32: out.v = uint64_t(c.read<uint32_t>("a u32 value")); break;
    case GgufType::I32: out.v = int64_t(c.read<int32_t>("an i32 value")); break;
    case GgufType::U64: out.v = c.read<uint64_t>("a u64 value"); break;
    case GgufType::I64: out.v = c.read<int64_t>("an i64 value"); break;
    case GgufType::F32: out.v = double(c.read<float>("an f32 value")); break;
    case GgufType::F64: out.v = c.read<double>("an f64 value"); break;
    case GgufType::Bool: {
      const uint8_t b = c.read<uint8_t>("a bool value");
      if (b > 1) c.fail("bool value of key '" + key + "' is " + std::to_string(b) + ", not 0 or 1");
      out.v = b != 0;
      break;
    }
    case GgufType::String: out.v = c.read_string("a string value"); break;
    case GgufType::Array: out.v = read_array(c, depth, key, nested_budget); break;
  }
  return out;
}

GgufArray read_array(Cursor& c, int depth, const std::string& key, uint64_t& nested_budget) {
  if (depth >= kMaxArrayDepth) c.fail("arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " in key '" + key + "'");
  const uint32_t et = c.read<uint32_t>("an array element type");
  if (!valid_type(et)) c.fail("unknown array element type " + std::to_string(et) + " in key '" + key + "'");
  const uint64_t n = c.read<uint64_t>("an array length");
  GgufArray arr;
  arr.elem_type = static_cast<GgufType>(et);
  arr.count = n;
  if (n > c.remaining() / min_encoded_size(arr.elem_type))
    c.fail("array length " + std::to_string(n) + " of key '" + key + "' is larger than the file can hold");
  if (const size_t sz = fixed_size(arr.elem_type)) {
    arr.raw = c.take(static_cast<size_t>(n) * sz);
  } else if (arr.elem_type == GgufType::String) {
    arr.strings.reserve(static_cast<size_t>(n));
    for (uint64_t i = 0; i < n; ++i) arr.strings.push_back(c.read_string("a string array element"));
  } else {
    if (n > nested_budget) c.fail("too many nested arrays in key '" + key + "'");
    nested_budget -= n;
    arr.arrays.reserve(static_cast<size_t>(n));
    for (uint64_t i = 0; i < n; ++i) arr.arrays.push_back(read_array(c, depth + 1, key, nested_budget));
  }
  return arr;
}

template <typename T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

bool GgufArray::elem_is_number() const { return fixed_size(elem_type) != 0; }

int64_t GgufArray::int_at(size_t i) const {
  if (i >= count) throw Error("array index out of range");
  const uint8_t* p = raw + i * fixed_size(elem_type);
  switch (elem_type) {
    case GgufType::U8: return load_le<uint8_t>(p);
    case GgufType::I8: return load_le<int8_t>(p);
    case GgufType::Bool: return load_le<uint8_t>(p) != 0;
    case GgufType::U16: return load_le<uint16_t>(p);
    case GgufType::I16: return load_le<int16_t>(p);
    case GgufType::U32: return load_le<uint32_t>(p);
    case GgufType::I32: return load_le<int32_t>(p);
    case GgufType::U64: return static_cast<int64_t>(load_le<uint64_t>(p));
    case GgufType::I64: return load_le<int64_t>(p);
    default: break;
  }
  throw Error(std::string("array of ") + gguf_type_name(elem_type) + " does not hold integers");
}

double GgufArray::number_at(size_t i) const {
  if (i >= count) throw Error("array index out of range");
  if (elem_type == GgufType::F32) return load_le<float>(raw + i * 4);
  if (elem_type == GgufType::F64) return load_le<double>(raw + i * 8);
  return static_cast<double>(int_at(i));
}

std::string_view GgufArray::string_at(size_t i) const {
  if (elem_type != GgufType::String) throw Error(std::string("array of ") + gguf_type_name(elem_type) + " does not hold strings");
  return strings.at(i);
}

GgufValue GgufArray::at(size_t i) const {
  if (i >= count) throw Error("array index out of range");
  GgufValue v;
  v.type = elem_type;
  switch (elem_type) {
    case GgufType::String: v.v = strings[i]; break;
    case GgufType::Array: v.v = arrays[i]; break;
    case GgufType::F32: case GgufType::F64: v.v = number_at(i); break;
    case GgufType::Bool: v.v = int_at(i) != 0; break;
    case GgufType::I8: case GgufType::I16: case GgufType::I32: case GgufType::I64: v.v = int_at(i); break;
    default: v.v = static_cast<uint64_t>(int_at(i)); break;
  }
  return v;
}

const char* gguf_type_name(GgufType t) {
  static const char* kNames[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < 13 ? kNames[i] : "?";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16: case GgufType::U32:
    case GgufType::I32: case GgufType::U64: case GgufType::I64: case GgufType::Bool: return true;
    default: return false;
  }
}

int64_t GgufValue::as_int() const {
  if (auto p = std::get_if<uint64_t>(&v)) return static_cast<int64_t>(*p);
  if (auto p = std::get_if<int64_t>(&v)) return *p;
  if (auto p = std::get_if<bool>(&v)) return *p ? 1 : 0;
  throw Error(std::string("value of type ") + gguf_type_name(type) + " is not an integer");
}

double GgufValue::as_double() const {
  if (auto p = std::get_if<double>(&v)) return *p;
  return static_cast<double>(as_int());
}

std::string_view GgufValue::as_string() const {
  if (auto p = std::get_if<std::string_view>(&v)) return *p;
  throw Error(std::string("value of type ") + gguf_type_name(type) + " is not a string");
}

const GgufArray& GgufValue::as_array() const {
  if (auto p = std::get_if<GgufArray>(&v)) return *p;
  throw Error(std::string("value of type ") + gguf_type_name(type) + " is not an array");
}

std::string GgufValue::to_display(size_t max_items) const {
  std::ostringstream os;
  switch (type) {
    case GgufType::String: {
      const std::string s(as_string());
      os << '"' << (s.size() > 80 ? s.substr(0, 77) + "..." : s) << '"';
      break;
    }
    case GgufType::Array: {
      const auto& a = as_array();
      os << "[" << a.size() << " x " << gguf_type_name(a.elem_type) << "]";
      if (max_items) {
        os << " {";
        for (size_t i = 0; i < a.size() && i < max_items; ++i) os << (i ? ", " : "") << a.at(i).to_display(0);
        if (a.size() > max_items) os << ", ...";
        os << "}";
      }
      break;
    }
    case GgufType::Bool: os << (as_int() ? "true" : "false"); break;
    case GgufType::F32: case GgufType::F64: os << as_double(); break;
    default: os << as_int(); break;
  }
  return os.str();
}

int64_t GgufTensorInfo::n_elements() const {
  int64_t n = 1;
  for (auto d : ne) n *= d;
  return n;
}

GgufFile GgufFile::parse(const uint8_t* data, size_t size, const std::string& label) {
  GgufFile f;
  f.base_ = data;
  f.size_ = size;
  f.label_ = label;
  Cursor c(data, size, f.label_);

  if (size < 4) c.fail("file is truncated: too short to be GGUF (" + std::to_string(size) + " bytes)");
  if (std::memcmp(data, "GGUF", 4) != 0) c.fail("bad magic: not a GGUF file");
  c.read<uint32_t>("magic");
  f.version_ = c.read<uint32_t>("the version");
  if (f.version_ == 1) c.fail("GGUF version 1 is not supported (convert it with a current llama.cpp)");
  if (f.version_ != 2 && f.version_ != 3) c.fail("unsupported GGUF version " + std::to_string(f.version_));
  const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
  const uint64_t n_kv = c.read<uint64_t>("the metadata count");
  // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at least 8+4+8+4+8.
  if (n_kv > c.remaining() / 13) c.fail("metadata count " + std::to_string(n_kv) + " is larger than the file can hold");

  uint64_t nested_budget = kMaxNestedArrays;
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key(c.read_string("a metadata key"));
    const uint32_t t = c.read<uint32_t>("a metadata type");
    if (!valid_type(t)) c.fail("unknown metadata value type " + std::to_string(t) + " for key '" + key + "'");
    GgufValue v = read_value(c, static_cast<GgufType>(t), 0, key, nested_budget);
    if (f.kv_index_.count(key)) c.fail("duplicate metadata key '" + key + "'");
    f.kv_index_[key] = f.kv_.size();
    f.kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = f.find("general.alignment")) {
    if (!a->is_integer() || a->as_int() <= 0 || a->as_int() > (1 << 20) || (a->as_int() & (a->as_int() - 1)) != 0)
      c.fail("general.alignment must be a power of two, got " + a->to_display());
    f.alignment_ = static_cast<uint32_t>(a->as_int());
  }

  if (n_tensors > c.remaining() / 32) c.fail("tensor count " + std::to_string(n_tensors) + " is larger than the file can hold");
  f.tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo ti;
    ti.name = std::string(c.read_string("a tensor name"));
    const uint32_t n_dims = c.read<uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      c.fail("tensor '" + ti.name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    int64_t n_elem = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.read<uint64_t>("a tensor dimension");
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (ne != 0 && static_cast<uint64_t>(n_elem) > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne))
        c.fail("tensor '" + ti.name + "' has an absurd dimension " + std::to_string(ne));
      ti.ne.push_back(static_cast<int64_t>(ne));
      n_elem *= static_cast<int64_t>(ne);
    }
    const uint32_t raw_type = c.read<uint32_t>("a tensor type");
    const auto info = dtype_info(raw_type);
    if (!info) c.fail("tensor '" + ti.name + "' has unknown or unsupported type " + std::to_string(raw_type));
    ti.type = info->type;
    if (ti.ne[0] % info->block_size != 0)
      c.fail("tensor '" + ti.name + "' row length " + std::to_string(ti.ne[0]) + " is not a multiple of " +
             std::to_string(info->block_size) + " (block size of " + std::string(info->name) + ")");
    const uint64_t blocks = static_cast<uint64_t>(n_elem / info->block_size);
    if (blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(info->block_bytes))
      c.fail("tensor '" + ti.name + "' is absurdly large");
    ti.n_bytes = blocks * static_cast<uint64_t>(info->block_bytes);
    ti.offset = c.read<uint64_t>("a tensor offset");
    if (ti.offset % f.alignment_ != 0)
      c.fail("tensor '" + ti.name + "' offset " + std::to_string(ti.offset) + " is not aligned to " + std::to_string(f.alignment_));
    if (f.tensor_index_.count(ti.name)) c.fail("duplicate tensor name '" + ti.name + "'");
    f.tensor_index_[ti.name] = f.tensors_.size();
    f.tensors_.push_back(std::move(ti));
  }
  const uint64_t pos = c.pos();
  f.data_offset_ = (pos + f.alignment_ - 1) / f.alignment_ * f.alignment_;
  return f;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::optional<int64_t> GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) throw Error(label_ + ": key '" + key + "' should be an integer, is " + gguf_type_name(v->type));
  return v->as_int();
}

std::optional<double> GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw Error(label_ + ": key '" + key + "' should be a number, is " + gguf_type_name(v->type));
  return v->as_double();
}

std::optional<std::string> GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::String) throw Error(label_ + ": key '" + key + "' should be a string, is " + gguf_type_name(v->type));
  return std::string(v->as_string());
}

std::optional<bool> GgufFile::get_bool(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) throw Error(label_ + ": key '" + key + "' should be a bool, is " + gguf_type_name(v->type));
  return v->as_int() != 0;
}

int64_t GgufFile::require_int(const std::string& key) const {
  auto v = get_int(key);
  if (!v) throw Error(label_ + ": missing required key '" + key + "'");
  return *v;
}

std::string GgufFile::require_string(const std::string& key) const {
  auto v = get_string(key);
  if (!v) throw Error(label_ + ": missing required key '" + key + "'");
  return *v;
}

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& t) const {
  const uint64_t begin = data_offset_ + t.offset;
  if (data_offset_ > size_ || t.offset > size_ - data_offset_ || t.n_bytes > size_ - begin)
    throw Error(label_ + ": tensor '" + t.name + "' data (" + std::to_string(t.n_bytes) + " bytes at offset " +
                std::to_string(begin) + ") runs past the end of the file (" + std::to_string(size_) + " bytes)");
  return base_ + begin;
}

void GgufFile::check_all_tensor_bounds() const {
  for (const auto& t : tensors_) tensor_data(t);
}

}  // namespace chassis
