// A whole small file (JSON configs, templates, tokenizer.json) as a string; throws Error naming
// the path when it cannot be read. Model weights are mapped (mapped_file.h), never read this way.
#pragma once
#include <string>

namespace chassis {

std::string read_file(const std::string& path);

}  // namespace chassis
