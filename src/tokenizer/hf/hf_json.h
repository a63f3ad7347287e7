// Private to src/tokenizer/hf: the tokenizer.json node a stage factory reads, and typed accessors
// whose errors name the stage and the field.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace chassis::hf {

struct JsonRef {
  const nlohmann::json& j;
  std::string where;  // "tokenizer.json: normalizer" etc.

  [[noreturn]] void fail(const std::string& what) const { throw Error(where + ": " + what); }
  std::string type() const {
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) fail("expected an object with a \"type\"");
    return j["type"].get<std::string>();
  }
  bool has(const char* key) const { return j.is_object() && j.contains(key) && !j[key].is_null(); }
  std::string str(const char* key, const std::string& def = "") const {
    if (!has(key)) return def;
    if (!j[key].is_string()) fail(std::string("field \"") + key + "\" must be a string");
    return j[key].get<std::string>();
  }
  bool flag(const char* key, bool def) const {
    if (!has(key)) return def;
    if (!j[key].is_boolean()) fail(std::string("field \"") + key + "\" must be true or false");
    return j[key].get<bool>();
  }
  int64_t integer(const char* key, int64_t def) const {
    if (!has(key)) return def;
    if (!j[key].is_number_integer()) fail(std::string("field \"") + key + "\" must be an integer");
    return j[key].get<int64_t>();
  }
  // A missing field reads as null (const operator[] on a missing key is undefined in nlohmann).
  JsonRef child(const char* key) const {
    static const nlohmann::json null_json;
    return JsonRef{has(key) ? j[key] : null_json, where + "." + key};
  }
  JsonRef item(size_t i) const { return JsonRef{j[i], where + "[" + std::to_string(i) + "]"}; }
};

}  // namespace chassis::hf
