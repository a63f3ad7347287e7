// A JSON file of a model folder (config.json, tokenizer_config.json, generation_config.json, ...)
// parsed whole, with one error shape for everything that can be wrong with it: the path, then what
// (unreadable, not valid JSON, not an object).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace chassis {

enum class IfMissing {
  kFail,         // a missing file is an error naming it
  kEmptyObject,  // a missing file reads as {} (optional configs)
};

// The file's top-level object. Throws Error naming the path when it cannot be read (or is missing and
// required), is not valid JSON, or is not a JSON object.
nlohmann::json read_json_object(const std::string& path, IfMissing if_missing);
// The same keeping the keys' order (chat templates see the config as written).
nlohmann::ordered_json read_ordered_json_object(const std::string& path, IfMissing if_missing);

}  // namespace chassis
