// Stop strings on a stream of generated text: text is released only once it can no longer turn
// into a stop string, and generation ends at the first one (which, like OpenAI, is not returned).
#pragma once
#include <string>
#include <vector>

namespace chassis {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Appends newly generated text (complete UTF-8) and returns what is now safe to emit. Once a stop
  // string appears, stopped() turns true and everything from it on is dropped.
  std::string push(const std::string& text);
  // At the end of generation: whatever was held back as a possible start of a stop string.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace chassis
