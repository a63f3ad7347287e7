// Helpers shared by the tests: paths into ../shared, random data, and a small GGUF writer used to
// build valid and hostile files on the fly.
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>
#include <unistd.h>

namespace chassis::test {

inline std::string shared(const std::string& rel) { return std::string(CHASSIS_SHARED_DIR) + "/" + rel; }

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/chassis-test-" + std::to_string(::getpid()) + "-" + name;
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Builds GGUF bytes field by field, so tests can write both valid files and precise corruptions.
class GgufBuilder {
 public:
  explicit GgufBuilder(uint32_t version = 3) { raw("GGUF", 4); u32(version); }

  GgufBuilder& u8(uint8_t v) { return pod(v); }
  GgufBuilder& u16(uint16_t v) { return pod(v); }
  GgufBuilder& u32(uint32_t v) { return pod(v); }
  GgufBuilder& u64(uint64_t v) { return pod(v); }
  GgufBuilder& i32(int32_t v) { return pod(v); }
  GgufBuilder& f32(float v) { return pod(v); }
  GgufBuilder& str(const std::string& s) { u64(s.size()); return raw(s.data(), s.size()); }
  GgufBuilder& raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
    return *this;
  }
  // Key/value helpers (type ids as in GGUF).
  GgufBuilder& kv_u32(const std::string& k, uint32_t v) { str(k); u32(4); return u32(v); }
  GgufBuilder& kv_f32(const std::string& k, float v) { str(k); u32(6); return f32(v); }
  GgufBuilder& kv_bool(const std::string& k, bool v) { str(k); u32(7); return u8(v ? 1 : 0); }
  GgufBuilder& kv_str(const std::string& k, const std::string& v) { str(k); u32(8); return str(v); }
  GgufBuilder& kv_strs(const std::string& k, const std::vector<std::string>& v) {
    str(k); u32(9); u32(8); u64(v.size());
    for (const auto& s : v) str(s);
    return *this;
  }
  GgufBuilder& kv_f32s(const std::string& k, const std::vector<float>& v) {
    str(k); u32(9); u32(6); u64(v.size());
    for (float x : v) f32(x);
    return *this;
  }
  GgufBuilder& kv_i32s(const std::string& k, const std::vector<int32_t>& v) {
    str(k); u32(9); u32(5); u64(v.size());
    for (int32_t x : v) i32(x);
    return *this;
  }
  GgufBuilder& tensor_info(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset) {
    str(name); u32(static_cast<uint32_t>(ne.size()));
    for (auto d : ne) u64(d);
    u32(type);
    return u64(offset);
  }
  GgufBuilder& align(size_t a = 32) {
    while (bytes.size() % a) bytes.push_back(0);
    return *this;
  }
  std::vector<uint8_t> bytes;

 private:
  template <typename T>
  GgufBuilder& pod(T v) { return raw(&v, sizeof v); }
};

}  // namespace chassis::test
