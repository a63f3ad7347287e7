#include "io/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "io/gguf.h"

namespace chassis {
namespace {
constexpr uint32_t kAlignment = 32;
enum : uint32_t { kU32 = 4, kF32 = 6, kBool = 7, kString = 8, kArray = 9, kI32 = 5 };
}  // namespace

template <typename T>
void GgufWriter::put(T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  kv_.insert(kv_.end(), p, p + sizeof(T));
}

void GgufWriter::put_string(const std::string& s) {
  put<uint64_t>(s.size());
  kv_.insert(kv_.end(), s.begin(), s.end());
}

void GgufWriter::key(const std::string& k, uint32_t type) {
  put_string(k);
  put<uint32_t>(type);
  ++n_kv_;
}

void GgufWriter::add_u32(const std::string& k, uint32_t v) { key(k, kU32); put(v); }
void GgufWriter::add_i32(const std::string& k, int32_t v) { key(k, kI32); put(v); }
void GgufWriter::add_f32(const std::string& k, float v) { key(k, kF32); put(v); }
void GgufWriter::add_bool(const std::string& k, bool v) { key(k, kBool); put<uint8_t>(v ? 1 : 0); }
void GgufWriter::add_string(const std::string& k, const std::string& v) { key(k, kString); put_string(v); }

void GgufWriter::put_scalar(uint32_t type, const GgufValue& v) {
  switch (static_cast<GgufType>(type)) {
    case GgufType::U8: put<uint8_t>(static_cast<uint8_t>(v.as_int())); break;
    case GgufType::I8: put<int8_t>(static_cast<int8_t>(v.as_int())); break;
    case GgufType::U16: put<uint16_t>(static_cast<uint16_t>(v.as_int())); break;
    case GgufType::I16: put<int16_t>(static_cast<int16_t>(v.as_int())); break;
    case GgufType::U32: put<uint32_t>(static_cast<uint32_t>(v.as_int())); break;
    case GgufType::I32: put<int32_t>(static_cast<int32_t>(v.as_int())); break;
    case GgufType::U64: put<uint64_t>(std::get<uint64_t>(v.v)); break;
    case GgufType::I64: put<int64_t>(v.as_int()); break;
    case GgufType::F32: put<float>(static_cast<float>(v.as_double())); break;
    case GgufType::F64: put<double>(v.as_double()); break;
    case GgufType::Bool: put<uint8_t>(std::get<bool>(v.v) ? 1 : 0); break;
    case GgufType::String: put_string(std::string(v.as_string())); break;
    case GgufType::Array: put_array(v.as_array()); break;
  }
}

void GgufWriter::put_array(const GgufArray& a) {
  put<uint32_t>(static_cast<uint32_t>(a.elem_type));
  put<uint64_t>(a.count);
  if (a.elem_type == GgufType::String) {
    for (const auto& s : a.strings) put_string(std::string(s));
  } else if (a.elem_type == GgufType::Array) {
    for (const auto& inner : a.arrays) put_array(inner);
  } else {  // fixed-size elements are kept packed, little-endian, exactly as read
    const size_t bytes = static_cast<size_t>(a.count) * gguf_type_size(a.elem_type);
    kv_.insert(kv_.end(), a.raw, a.raw + bytes);
  }
}

void GgufWriter::add_value(const std::string& k, const GgufValue& v) {
  key(k, static_cast<uint32_t>(v.type));
  put_scalar(static_cast<uint32_t>(v.type), v);
}

void GgufWriter::add_strings(const std::string& k, const std::vector<std::string>& v) {
  key(k, kArray);
  put<uint32_t>(kString);
  put<uint64_t>(v.size());
  for (const auto& s : v) put_string(s);
}

void GgufWriter::add_f32s(const std::string& k, const std::vector<float>& v) {
  key(k, kArray);
  put<uint32_t>(kF32);
  put<uint64_t>(v.size());
  for (float x : v) put(x);
}

void GgufWriter::add_i32s(const std::string& k, const std::vector<int32_t>& v) {
  key(k, kArray);
  put<uint32_t>(kI32);
  put<uint64_t>(v.size());
  for (int32_t x : v) put(x);
}

void GgufWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, std::vector<uint8_t> data) {
  auto shared = std::make_shared<std::vector<uint8_t>>(std::move(data));
  add_tensor(name, type, std::move(ne), [shared](std::vector<uint8_t>& out) { out = *shared; });
}

void GgufWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, Fill fill) {
  if (ne.empty() || ne[0] % dtype_info(type).block_size != 0)
    throw Error("gguf writer: tensor '" + name + "' row length does not fit type " + std::string(dtype_name(type)));
  int64_t rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) rows *= ne[i];
  const uint64_t n_bytes = uint64_t(row_bytes(type, ne[0]) * rows);
  tensors_.push_back({name, type, std::move(ne), n_bytes, std::move(fill)});
}

void GgufWriter::write(const std::string& path) const {
  std::vector<uint8_t> head;
  auto put_raw = [&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    head.insert(head.end(), b, b + n);
  };
  auto put_u32 = [&](uint32_t v) { put_raw(&v, 4); };
  auto put_u64 = [&](uint64_t v) { put_raw(&v, 8); };
  put_raw("GGUF", 4);
  put_u32(3);
  put_u64(tensors_.size());
  put_u64(n_kv_);
  head.insert(head.end(), kv_.begin(), kv_.end());
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_u64(t.name.size());
    put_raw(t.name.data(), t.name.size());
    put_u32(uint32_t(t.ne.size()));
    for (int64_t d : t.ne) put_u64(uint64_t(d));
    put_u32(static_cast<uint32_t>(t.type));
    put_u64(offset);
    offset += (t.n_bytes + kAlignment - 1) / kAlignment * kAlignment;
  }
  while (head.size() % kAlignment) head.push_back(0);

  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(path + ": cannot write: " + std::strerror(errno));
  bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size();
  static const uint8_t zeros[kAlignment] = {};
  std::vector<uint8_t> data;
  for (const auto& t : tensors_) {
    if (!ok) break;
    data.clear();
    t.fill(data);
    if (data.size() != t.n_bytes) {
      std::fclose(f);
      std::remove(tmp.c_str());
      throw Error("gguf writer: tensor '" + t.name + "' produced " + std::to_string(data.size()) + " bytes, expected " +
                  std::to_string(t.n_bytes));
    }
    ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
    const size_t pad = (kAlignment - data.size() % kAlignment) % kAlignment;
    ok = ok && std::fwrite(zeros, 1, pad, f) == pad;
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": writing failed (disk full?)");
  }
}

}  // namespace chassis
