// WordPiece (bert vocab, as llama.cpp stores it: word-initial pieces carry a '▁' prefix, continuation
// pieces none). Text is lower-cased, accents stripped, split on whitespace and punctuation, then each
// word is covered greedily by the longest matching pieces; a word that cannot be covered is [UNK].
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace chassis {
namespace {

bool is_chinese_char(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::vector<std::string> wpm_words(std::string_view text) {
  std::vector<std::string> words(1);
  for (uint32_t cp : utf8_decode(text)) {
    cp = nfd_base(cp);
    const CodepointFlags f = codepoint_flags(cp);
    if (f.whitespace) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (cp == 0 || cp == 0xFFFD || f.control) continue;
    const std::string s = utf8_encode(to_lower(cp));
    if (f.punctuation || (cp < 0x7F && f.symbol) || is_chinese_char(cp)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = s;
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

}  // namespace

void Vocab::tokenize_wpm(std::string_view text, std::vector<int32_t>& out) const {
  for (const std::string& word : wpm_words(text)) {
    const std::string w = "\xE2\x96\x81" + word;
    const size_t n = w.size();
    const size_t start = out.size();
    for (size_t i = 0; i < n; ++i) {
      bool matched = false;
      for (size_t j = std::min(n, i + max_token_len_ + 1); j > i; --j) {
        if (auto id = find(std::string_view(w).substr(i, j - i))) {
          out.push_back(*id);
          matched = true;
          i = j - 1;
          break;
        }
      }
      if (!matched) {
        out.resize(start);
        break;
      }
    }
    if (out.size() == start && unk_ != kNoToken) out.push_back(unk_);
  }
}

}  // namespace chassis
