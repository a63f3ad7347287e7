// What generation, chat and the CLI need from a tokenizer, whichever file it came from: a GGUF's
// embedded vocab or a Hugging Face tokenizer.json.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace chassis {

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  // add_special: BOS/EOS or the post-processor's tokens. parse_special: special-token text in the
  // input becomes those tokens.
  virtual std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special) const = 0;
  // The bytes one token adds to a stream of generated text.
  virtual std::string token_to_piece(int32_t id) const = 0;
  virtual bool is_eog(int32_t id) const = 0;
  virtual int32_t n_tokens() const = 0;
};

}  // namespace chassis
