// Regex pre-tokenization for byte-level BPE: the text is split by a sequence of regexes (chosen by
// the GGUF key tokenizer.ggml.pre), each regex splitting every piece the previous one produced into
// its matches and the gaps between them. PCRE2 gives the Unicode properties (\p{L}, \p{N}, ...) and
// lookaheads these patterns need, which std::regex lacks.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace chassis {

// The regexes of a named pre-tokenizer; throws Error for an unknown name.
std::vector<std::string> pretokenizer_regexes(const std::string& pre_name);

// One compiled PCRE2 pattern (UTF + Unicode properties, as Rust's regex crate and Oniguruma see
// \w, \s, \p{L}); used by tokenizer.json's Split/Replace stages.
class Regex {
 public:
  explicit Regex(const std::string& pattern);  // throws Error naming the pattern
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Non-overlapping, non-empty matches as (offset, length), left to right.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  void* code_;
};

class RegexSplitter {
 public:
  explicit RegexSplitter(const std::vector<std::string>& patterns);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;
  std::vector<std::string> split(std::string_view text) const;

 private:
  struct Compiled;
  std::vector<std::unique_ptr<Compiled>> regexes_;
};

}  // namespace chassis
