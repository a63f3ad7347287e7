// Token ids back to bytes: undo the '▁' space marker (SentencePiece, WordPiece), the byte-level
// code point mapping (BPE) and <0xXX> byte tokens.
#include <cctype>
#include <cstdlib>

#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace chassis {

std::string Vocab::token_to_piece(int32_t id, bool special) const {
  if (id < 0 || id >= size()) return {};
  const TokenData& t = tokens_[static_cast<size_t>(id)];
  switch (t.type) {
    case TokenType::Control:
      return special ? t.text : std::string();
    case TokenType::Unknown:
      return special ? t.text : std::string("\xE2\x96\x85");
    case TokenType::UserDefined:
      return t.text;
    case TokenType::Byte:
      if (t.text.size() == 6 && t.text.rfind("<0x", 0) == 0 && t.text[5] == '>' && std::isxdigit(uint8_t(t.text[3])) &&
          std::isxdigit(uint8_t(t.text[4])))
        return std::string(1, static_cast<char>(std::strtol(t.text.substr(3, 2).c_str(), nullptr, 16)));
      return t.text;
    default: break;
  }
  if (kind_ == VocabKind::BPE) {
    std::string out;
    for (uint32_t cp : utf8_decode(t.text)) {
      const int b = unicode_to_byte(cp);
      if (b >= 0) out += static_cast<char>(b);
      else utf8_append(out, cp);
    }
    return out;
  }
  std::string out;
  for (size_t i = 0; i < t.text.size();) {
    if (t.text.compare(i, 3, "\xE2\x96\x81") == 0) {
      out += ' ';
      i += 3;
    } else {
      out += t.text[i++];
    }
  }
  return out;
}

std::string Vocab::detokenize(const std::vector<int32_t>& ids, bool special) const {
  std::string s;
  for (int32_t id : ids) s += token_to_piece(id, special);
  return s;
}

}  // namespace chassis
