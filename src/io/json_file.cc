#include "io/json_file.h"

#include <filesystem>

#include "core/error.h"
#include "io/read_file.h"

namespace chassis {
namespace {

template <class Json>
Json read_object(const std::string& path, IfMissing if_missing) {
  if (if_missing == IfMissing::kEmptyObject && !std::filesystem::exists(path)) return Json::object();
  Json j;
  try {
    j = Json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": invalid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(path + ": expected a JSON object");
  return j;
}

}  // namespace

nlohmann::json read_json_object(const std::string& path, IfMissing if_missing) {
  return read_object<nlohmann::json>(path, if_missing);
}

nlohmann::ordered_json read_ordered_json_object(const std::string& path, IfMissing if_missing) {
  return read_object<nlohmann::ordered_json>(path, if_missing);
}

}  // namespace chassis
