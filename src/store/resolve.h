// What every command that takes a MODEL does with it: a path that exists is used as is; otherwise
// the argument must be a hub name, found in the cache or (unless offline) pulled into it.
#pragma once
#include <string>

namespace chassis::store {

std::string resolve_model_arg(const std::string& arg);

}  // namespace chassis::store
