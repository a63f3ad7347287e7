// The one error type of the engine: a message a user can act on, naming the file or value at fault.
#pragma once
#include <stdexcept>
#include <string>

namespace chassis {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace chassis
