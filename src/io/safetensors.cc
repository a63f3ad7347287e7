// safetensors: header validation (lengths, JSON shape, dtypes, sizes, contiguous offsets) and the
// atomic writer.
#include "io/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace chassis {
namespace {

struct DTypeEntry {
  SafetensorsDType type;
  const char* name;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {SafetensorsDType::BOOL, "BOOL", 1}, {SafetensorsDType::U8, "U8", 1},
    {SafetensorsDType::I8, "I8", 1},     {SafetensorsDType::F8_E5M2, "F8_E5M2", 1},
    {SafetensorsDType::F8_E4M3, "F8_E4M3", 1}, {SafetensorsDType::I16, "I16", 2},
    {SafetensorsDType::U16, "U16", 2},   {SafetensorsDType::F16, "F16", 2},
    {SafetensorsDType::BF16, "BF16", 2}, {SafetensorsDType::I32, "I32", 4},
    {SafetensorsDType::U32, "U32", 4},   {SafetensorsDType::F32, "F32", 4},
    {SafetensorsDType::F64, "F64", 8},   {SafetensorsDType::I64, "I64", 8},
    {SafetensorsDType::U64, "U64", 8},
};

// The reference implementation refuses headers above 100 MB; so do we (before allocating anything).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

const DTypeEntry& entry(SafetensorsDType t) {
  for (const auto& e : kDTypes)
    if (e.type == t) return e;
  throw Error("unknown safetensors dtype");
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

const char* safetensors_dtype_name(SafetensorsDType t) { return entry(t).name; }
size_t safetensors_dtype_size(SafetensorsDType t) { return entry(t).size; }

std::optional<DType> to_engine_dtype(SafetensorsDType t) {
  switch (t) {
    case SafetensorsDType::F32: return DType::F32;
    case SafetensorsDType::F16: return DType::F16;
    case SafetensorsDType::BF16: return DType::BF16;
    default: return std::nullopt;
  }
}

int64_t SafetensorsTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

SafetensorsFile SafetensorsFile::parse(const uint8_t* data, size_t size, const std::string& label) {
  auto fail = [&](const std::string& what) -> Error { return Error(label + ": " + what); };
  if (size < 8) throw fail("not a safetensors file: " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  const uint64_t n = read_u64_le(data);
  if (n > kMaxHeaderBytes) throw fail("header length " + std::to_string(n) + " exceeds the 100 MB limit (corrupt or not safetensors)");
  if (n > size - 8) throw fail("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) + " bytes)");
  if (n < 2 || data[8] != '{') throw fail("header is not a JSON object (does not start with '{')");
  const std::string_view text(reinterpret_cast<const char*>(data + 8), n);

  // Duplicate names would make which tensor is meant ambiguous: refuse them while parsing.
  std::set<std::string> seen;
  std::string duplicate;
  nlohmann::json::parser_callback_t on_event = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::key && depth == 1 && duplicate.empty() &&
        !seen.insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, on_event);
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("header is not valid JSON (or not UTF-8): ") + e.what());
  }
  if (!duplicate.empty()) throw fail("tensor '" + duplicate + "' appears twice in the header");
  if (!header.is_object()) throw fail("header is not a JSON object");

  SafetensorsFile f;
  f.label_ = label;
  f.data_offset_ = 8 + n;
  f.data_ = data + 8 + n;
  const uint64_t data_size = size - 8 - n;

  for (const auto& item : header.items()) {
    const std::string name = item.key();  // (a named copy: clang 14 cannot capture structured bindings)
    const nlohmann::json& info = item.value();
    if (name == "__metadata__") {
      if (!info.is_object()) throw fail("__metadata__ must be an object of strings");
      for (const auto& [k, v] : info.items()) {
        if (!v.is_string()) throw fail("__metadata__ value '" + k + "' is not a string");
        f.metadata_.emplace_back(k, v.get<std::string>());
      }
      continue;
    }
    auto bad = [&](const std::string& what) { return fail("tensor '" + name + "': " + what); };
    if (!info.is_object()) throw bad("expected an object with dtype, shape and data_offsets");
    for (const auto& [k, v] : info.items())
      if (k != "dtype" && k != "shape" && k != "data_offsets") throw bad("unknown field '" + k + "'");
    SafetensorsTensor t;
    t.name = name;
    if (!info.contains("dtype") || !info["dtype"].is_string()) throw bad("missing or non-string dtype");
    const std::string dtype = info["dtype"].get<std::string>();
    const DTypeEntry* found = nullptr;
    for (const auto& e : kDTypes)
      if (dtype == e.name) found = &e;
    if (!found) throw bad("unknown dtype '" + dtype + "'");
    t.dtype = found->type;
    if (!info.contains("shape") || !info["shape"].is_array()) throw bad("missing or non-array shape");
    if (info["shape"].size() > 8) throw bad("shape has " + std::to_string(info["shape"].size()) + " dimensions (at most 8)");
    uint64_t elements = 1;
    for (const auto& d : info["shape"]) {
      if (!d.is_number_unsigned()) throw bad("shape entries must be non-negative integers");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t{1} << 62) || (dim != 0 && elements > (uint64_t{1} << 62) / dim)) throw bad("shape overflows");
      elements *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& offsets = info.contains("data_offsets") ? info["data_offsets"] : nlohmann::json();
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      throw bad("data_offsets must be [begin, end] with non-negative integers");
    t.begin = offsets[0].get<uint64_t>();
    t.end = offsets[1].get<uint64_t>();
    if (t.begin > t.end) throw bad("data_offsets begin " + std::to_string(t.begin) + " is after end " + std::to_string(t.end));
    if (t.end > data_size)
      throw bad("data ends at byte " + std::to_string(t.end) + " of a " + std::to_string(data_size) + "-byte data section (file truncated?)");
    if (elements > (uint64_t{1} << 62) / found->size) throw bad("shape overflows");
    const uint64_t expected = elements * found->size;
    if (t.end - t.begin != expected)
      throw bad("holds " + std::to_string(t.end - t.begin) + " bytes but " + dtype + " of this shape needs " + std::to_string(expected));
    f.tensors_.push_back(std::move(t));
  }

  // Tensors must tile the data section exactly: no overlap (two names for the same bytes), no
  // gaps, nothing after the last one.
  std::vector<const SafetensorsTensor*> by_offset;
  for (const auto& t : f.tensors_) by_offset.push_back(&t);
  std::stable_sort(by_offset.begin(), by_offset.end(),
                   [](auto* a, auto* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  uint64_t expected_begin = 0;
  for (const SafetensorsTensor* t : by_offset) {
    if (t->begin < expected_begin) throw fail("tensor '" + t->name + "' overlaps the previous tensor's bytes");
    if (t->begin > expected_begin)
      throw fail("gap of " + std::to_string(t->begin - expected_begin) + " bytes before tensor '" + t->name + "'");
    expected_begin = t->end;
  }
  if (expected_begin != data_size)
    throw fail(std::to_string(data_size - expected_begin) + " bytes after the last tensor belong to no tensor");
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_[f.tensors_[i].name] = i;
  return f;
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const auto& t : tensors) {
    uint64_t elements = 1;
    for (int64_t d : t.shape) {
      if (d < 0) throw Error(path + ": tensor '" + t.name + "' has a negative dimension");
      elements *= static_cast<uint64_t>(d);
    }
    const uint64_t bytes = elements * safetensors_dtype_size(t.dtype);
    if (header.contains(t.name)) throw Error(path + ": tensor '" + t.name + "' given twice");
    header[t.name] = {{"dtype", safetensors_dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    sizes.push_back(bytes);
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
  const std::string tmp = path + ".tmp";
  FILE* out = std::fopen(tmp.c_str(), "wb");
  if (!out) throw Error(tmp + ": cannot create");
  bool ok = true;
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  ok &= std::fwrite(len, 1, 8, out) == 8;
  ok &= std::fwrite(text.data(), 1, text.size(), out) == text.size();
  std::vector<uint8_t> buffer;
  for (size_t i = 0; i < tensors.size() && ok; ++i) {
    buffer.assign(sizes[i], 0);
    if (tensors[i].fill) tensors[i].fill(buffer.data());
    ok &= std::fwrite(buffer.data(), 1, buffer.size(), out) == buffer.size();
  }
  ok &= std::fflush(out) == 0;
  ok &= std::fclose(out) == 0;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": write failed (disk full?)");
  }
}

}  // namespace chassis
