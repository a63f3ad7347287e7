#include "engine/sampling_defaults.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/json_file.h"

namespace chassis {

SamplingChoices read_generation_config_sampling(const std::string& dir) {
  const std::string path = dir + "/generation_config.json";
  SamplingChoices s;
  const nlohmann::json j = read_json_object(path, IfMissing::kEmptyObject);
  auto number = [&](const char* key, double lo, double hi) -> std::optional<float> {
    if (!j.contains(key) || j[key].is_null()) return std::nullopt;
    if (!j[key].is_number() || j[key].get<double>() < lo || j[key].get<double>() > hi)
      throw Error(path + ": \"" + key + "\" must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return float(j[key].get<double>());
  };
  if (j.contains("do_sample") && j["do_sample"] == false) {  // greedy, whatever else is set
    s.temperature = 0.0f;
    return s;
  }
  s.temperature = number("temperature", 0, 100);
  s.top_p = number("top_p", 0, 1);
  s.min_p = number("min_p", 0, 1);
  s.repeat_penalty = number("repetition_penalty", 1e-3, 100);
  if (j.contains("top_k") && !j["top_k"].is_null()) {
    if (!j["top_k"].is_number_integer() || j["top_k"].get<int64_t>() < 0 || j["top_k"].get<int64_t>() > (1 << 24))
      throw Error(path + ": \"top_k\" must be a non-negative integer");
    s.top_k = int(j["top_k"].get<int64_t>());
  }
  return s;
}

SamplingChoices gguf_sampling(const GgufFile& f) {
  SamplingChoices s;
  auto number = [&](const char* key, double lo, double hi) -> std::optional<float> {
    const auto v = f.get_float(key);
    if (!v) return std::nullopt;
    if (!(*v >= lo && *v <= hi)) throw Error(f.label() + ": " + key + " = " + std::to_string(*v) + " is out of range");
    return float(*v);
  };
  s.temperature = number("general.sampling.temp", 0, 100);
  s.top_p = number("general.sampling.top_p", 0, 1);
  s.min_p = number("general.sampling.min_p", 0, 1);
  s.repeat_penalty = number("general.sampling.penalty_repeat", 1e-3, 100);
  if (const auto k = f.get_int("general.sampling.top_k")) {
    if (*k < 0 || *k > (1 << 24)) throw Error(f.label() + ": general.sampling.top_k is out of range");
    s.top_k = int(*k);
  }
  return s;
}

void add_gguf_sampling(GgufWriter& w, const SamplingChoices& s) {
  if (s.temperature) w.add_f32("general.sampling.temp", *s.temperature);
  if (s.top_k) w.add_i32("general.sampling.top_k", *s.top_k);
  if (s.top_p) w.add_f32("general.sampling.top_p", *s.top_p);
  if (s.min_p) w.add_f32("general.sampling.min_p", *s.min_p);
  if (s.repeat_penalty) w.add_f32("general.sampling.penalty_repeat", *s.repeat_penalty);
}

}  // namespace chassis
