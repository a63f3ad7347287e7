// Converts parsed JSON (messages, tools, --var values, tokenizer_config.json) into Jinja values the
// way Python's json.load would hand them to jinja2: ints stay ints, floats floats, objects keep order.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include "tokenizer/jinja/value.h"

namespace chassis::jinja {

Value from_json(const nlohmann::ordered_json& j);

}  // namespace chassis::jinja
