// tokenizer.json normalizers, pre-tokenizers and decoders, each restating what its counterpart in
// huggingface/tokenizers does to the text (offsets are not tracked: chassis needs the ids).
#include <utf8proc.h>

#include <cstdlib>

#include "tokenizer/hf/hf_json.h"
#include "tokenizer/hf/hf_tokenizer.h"
#include "tokenizer/jinja/text.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"

namespace chassis::hf {
namespace {

// ---- normalizers ----

std::string utf8proc_normalize(const std::string& s, int options) {
  utf8proc_uint8_t* out = nullptr;
  const std::string clean = utf8_sanitize(s);
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(clean.data()),
                                    static_cast<utf8proc_ssize_t>(clean.size()), &out,
                                    static_cast<utf8proc_option_t>(options | UTF8PROC_STABLE));
  if (n < 0) throw Error(std::string("unicode normalization failed: ") + utf8proc_errmsg(n));
  std::string result(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

struct UnicodeNorm : Normalizer {
  int options;
  explicit UnicodeNorm(int o) : options(o) {}
  std::string normalize(std::string t) const override { return utf8proc_normalize(t, options); }
};

// SentencePiece's precompiled normalization rules, as transformers.js applies them (it does not read
// the charsmap either): control characters dropped, the usual whitespace look-alikes (and '▁') made
// spaces, then NFKC on each side of any U+FF5E (which NFKC would otherwise fold to '~').
struct Precompiled : Normalizer {
  std::string normalize(std::string t) const override {
    std::string mapped;
    for (uint32_t cp : utf8_decode(t)) {
      if ((cp >= 0x01 && cp <= 0x08) || cp == 0x0B || (cp >= 0x0E && cp <= 0x1F) || cp == 0x7F || cp == 0x8F || cp == 0x9F) continue;
      const bool space = cp == 0x09 || cp == 0x0A || cp == 0x0C || cp == 0x0D || cp == 0xA0 || cp == 0x1680 ||
                         (cp >= 0x2000 && cp <= 0x200F) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
                         cp == 0x205F || cp == 0x2581 || cp == 0x3000 || cp == 0xFEFF || cp == 0xFFFD;
      utf8_append(mapped, space ? 0x20 : cp);
    }
    std::string out;
    size_t at = 0;
    const std::string tilde = "\xEF\xBD\x9E";  // U+FF5E
    for (;;) {
      const size_t next = mapped.find(tilde, at);
      out += utf8proc_normalize(mapped.substr(at, next == std::string::npos ? std::string::npos : next - at),
                                UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
      if (next == std::string::npos) break;
      out += tilde;
      at = next + tilde.size();
    }
    return out;
  }
};

struct Lowercase : Normalizer {
  std::string normalize(std::string t) const override { return jinja::py_lower(t); }
};

struct Strip : Normalizer {
  bool left, right;
  Strip(bool l, bool r) : left(l), right(r) {}
  std::string normalize(std::string t) const override { return jinja::py_strip(t, nullptr, left, right); }
};

struct Prepend : Normalizer {
  std::string prefix;
  std::string normalize(std::string t) const override { return t.empty() ? t : prefix + t; }
};

std::string replace_all(const std::string& text, const std::vector<std::pair<size_t, size_t>>& matches,
                        const std::string& with) {
  std::string out;
  size_t at = 0;
  for (const auto& [off, len] : matches) {
    out.append(text, at, off - at);
    out += with;
    at = off + len;
  }
  return out + text.substr(at);
}

std::vector<std::pair<size_t, size_t>> find_literal(const std::string& text, const std::string& needle) {
  std::vector<std::pair<size_t, size_t>> out;
  if (needle.empty()) return out;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + needle.size()))
    out.emplace_back(p, needle.size());
  return out;
}

// A tokenizer.json pattern: {"String": literal} or {"Regex": pattern}.
struct Pattern {
  std::string literal;
  std::unique_ptr<Regex> regex;
  explicit Pattern(const JsonRef& p) {
    if (p.has("String")) literal = p.str("String");
    else if (p.has("Regex")) {
      try {
        regex = std::make_unique<Regex>(p.str("Regex"));
      } catch (const Error& e) {
        p.fail(e.what());
      }
    }
    else p.fail("pattern must be {\"String\": ...} or {\"Regex\": ...}");
  }
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& text) const {
    return regex ? regex->find_all(text) : find_literal(text, literal);
  }
};

struct Replace : Normalizer {
  Pattern pattern;
  std::string content;
  Replace(const JsonRef& j) : pattern(j.child("pattern")), content(j.str("content")) {}
  std::string normalize(std::string t) const override { return replace_all(t, pattern.find_all(t), content); }
};

bool is_chinese_char(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

struct BertNormalizer : Normalizer {
  bool clean_text, chinese, strip_accents, lowercase;
  std::string normalize(std::string t) const override {
    std::string out;
    for (uint32_t c : utf8_decode(t)) {
      const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
      if (clean_text) {
        if (c == 0 || c == 0xFFFD) continue;
        const bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r' || cat == UTF8PROC_CATEGORY_ZS;
        if (ws) {
          out += ' ';
          continue;
        }
        if (cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF) continue;  // control chars
      }
      if (chinese && is_chinese_char(c)) {
        out += ' ';
        utf8_append(out, c);
        out += ' ';
      } else {
        utf8_append(out, c);
      }
    }
    if (strip_accents) {
      std::string nfd = utf8proc_normalize(out, UTF8PROC_DECOMPOSE), kept;
      for (uint32_t c : utf8_decode(nfd))
        if (utf8proc_category(static_cast<utf8proc_int32_t>(c)) != UTF8PROC_CATEGORY_MN) utf8_append(kept, c);
      out = kept;
    }
    return lowercase ? jinja::py_lower(out) : out;
  }
};

struct NormalizerSequence : Normalizer {
  std::vector<std::unique_ptr<Normalizer>> stages;
  std::string normalize(std::string t) const override {
    for (const auto& s : stages) t = s->normalize(std::move(t));
    return t;
  }
};

// ---- pre-tokenizers ----

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const JsonRef& j, Behavior def) {
  const std::string b = j.str("behavior", "");
  if (b.empty()) return def;
  if (b == "Removed") return Behavior::Removed;
  if (b == "Isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::MergedWithNext;
  if (b == "Contiguous") return Behavior::Contiguous;
  j.fail("unknown split behavior '" + b + "'");
}

// Splits one piece at `matches` (sorted, non-overlapping) the way tokenizers' split() does.
void split_piece(const Piece& piece, const std::vector<std::pair<size_t, size_t>>& found, Behavior behavior,
                 bool invert, std::vector<Piece>& out) {
  const std::string& t = piece.text;
  // (offset, length, is_match) covering the whole piece.
  std::vector<std::tuple<size_t, size_t, bool>> parts;
  size_t at = 0;
  for (const auto& [off, len] : found) {
    if (off > at) parts.emplace_back(at, off - at, invert);
    parts.emplace_back(off, len, !invert);
    at = off + len;
  }
  if (at < t.size()) parts.emplace_back(at, t.size() - at, invert);
  std::vector<std::pair<size_t, size_t>> pieces;  // (offset, length)
  bool pending_next = false;                      // MergedWithNext: a match waiting for the next part
  for (size_t i = 0; i < parts.size(); ++i) {
    auto [off, len, is_match] = parts[i];
    switch (behavior) {
      case Behavior::Removed:
        if (!is_match) pieces.emplace_back(off, len);
        break;
      case Behavior::Isolated: pieces.emplace_back(off, len); break;
      case Behavior::Contiguous:
        if (is_match && !pieces.empty() && i > 0 && std::get<2>(parts[i - 1]))
          pieces.back().second += len;
        else
          pieces.emplace_back(off, len);
        break;
      case Behavior::MergedWithPrevious:
        if (is_match && !pieces.empty()) pieces.back().second += len;
        else pieces.emplace_back(off, len);
        break;
      case Behavior::MergedWithNext:
        if (pending_next) {
          pieces.back().second += len;
          pending_next = is_match;
        } else {
          pieces.emplace_back(off, len);
          pending_next = is_match;
        }
        break;
    }
  }
  for (size_t k = 0; k < pieces.size(); ++k)
    if (pieces[k].second > 0) out.push_back({t.substr(pieces[k].first, pieces[k].second), piece.first && pieces[k].first == 0});
}

struct Split : PreTokenizer {
  Pattern pattern;
  Behavior behavior;
  bool invert;
  explicit Split(const JsonRef& j)
      : pattern(j.child("pattern")), behavior(parse_behavior(j, Behavior::Isolated)), invert(j.flag("invert", false)) {}
  std::vector<Piece> split(std::vector<Piece> in) const override {
    std::vector<Piece> out;
    for (const Piece& p : in) split_piece(p, pattern.find_all(p.text), behavior, invert, out);
    return out;
  }
};

// GPT-2's pre-tokenization regex, as tokenizers' ByteLevel uses it.
const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct ByteLevel : PreTokenizer {
  bool add_prefix_space, use_regex;
  Regex gpt2{kGpt2Pattern};
  std::vector<Piece> split(std::vector<Piece> in) const override {
    std::vector<Piece> out;
    for (Piece p : in) {
      if (add_prefix_space && (p.text.empty() || p.text[0] != ' ')) p.text = " " + p.text;
      std::vector<Piece> parts;
      if (use_regex) split_piece(p, gpt2.find_all(p.text), Behavior::Isolated, false, parts);
      else parts.push_back(p);
      for (Piece& part : parts) {
        std::string mapped;
        for (char c : part.text) mapped += byte_to_unicode(static_cast<uint8_t>(c));
        out.push_back({mapped, part.first});
      }
    }
    return out;
  }
};

struct Metaspace : PreTokenizer {
  std::string replacement = "\xE2\x96\x81";
  std::string prepend_scheme = "always";
  bool split_on_replacement = true;
  std::vector<Piece> split(std::vector<Piece> in) const override {
    std::vector<Piece> out;
    for (Piece p : in) {
      p.text = replace_all(p.text, find_literal(p.text, " "), replacement);
      const bool prepend = prepend_scheme == "always" || (prepend_scheme == "first" && p.first);
      if (prepend && p.text.compare(0, replacement.size(), replacement) != 0) p.text = replacement + p.text;
      if (split_on_replacement) split_piece(p, find_literal(p.text, replacement), Behavior::MergedWithNext, false, out);
      else out.push_back(p);
    }
    return out;
  }
};

struct RegexSplit : PreTokenizer {  // Whitespace, WhitespaceSplit, Digits, Punctuation, BertPreTokenizer
  std::vector<std::pair<std::unique_ptr<Regex>, Behavior>> steps;
  bool invert_first = false;
  std::vector<Piece> split(std::vector<Piece> in) const override {
    for (size_t s = 0; s < steps.size(); ++s) {
      std::vector<Piece> out;
      for (const Piece& p : in) split_piece(p, steps[s].first->find_all(p.text), steps[s].second, s == 0 && invert_first, out);
      in = std::move(out);
    }
    return in;
  }
};

const char* kPunctuation = R"([\p{P}!-/:-@\[-`{-~])";  // Unicode punctuation and ASCII symbols, as tokenizers' is_punc

struct PreTokenizerSequence : PreTokenizer {
  std::vector<std::unique_ptr<PreTokenizer>> stages;
  std::vector<Piece> split(std::vector<Piece> in) const override {
    for (const auto& s : stages) in = s->split(std::move(in));
    return in;
  }
};

// ---- decoders ----

struct ByteLevelDecoder : Decoder {
  std::vector<std::string> decode(std::vector<std::string> tokens) const override {
    std::string bytes;
    for (const auto& t : tokens)
      for (uint32_t cp : utf8_decode(t)) {
        const int b = unicode_to_byte(cp);
        if (b >= 0) bytes += static_cast<char>(b);
        else utf8_append(bytes, cp);
      }
    return {utf8_sanitize(bytes)};
  }
};

struct ReplaceDecoder : Decoder {
  Pattern pattern;
  std::string content;
  ReplaceDecoder(const JsonRef& j) : pattern(j.child("pattern")), content(j.str("content")) {}
  std::vector<std::string> decode(std::vector<std::string> tokens) const override {
    for (auto& t : tokens) t = replace_all(t, pattern.find_all(t), content);
    return tokens;
  }
};

int byte_token_value(const std::string& t) {  // "<0xAB>" -> 0xAB, else -1
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  const std::string hex = t.substr(3, 2);
  char* end = nullptr;
  const long v = std::strtol(hex.c_str(), &end, 16);
  return end == hex.c_str() + 2 ? static_cast<int>(v) : -1;
}

struct ByteFallbackDecoder : Decoder {
  std::vector<std::string> decode(std::vector<std::string> tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    size_t n_bytes = 0;
    auto flush = [&] {
      if (n_bytes == 0) return;
      // Invalid UTF-8 becomes one U+FFFD per byte, as tokenizers does.
      if (utf8_sanitize(bytes) == bytes) out.push_back(bytes);
      else for (size_t i = 0; i < n_bytes; ++i) out.push_back("\xEF\xBF\xBD");
      bytes.clear();
      n_bytes = 0;
    };
    for (const auto& t : tokens) {
      const int b = byte_token_value(t);
      if (b >= 0) {
        bytes += static_cast<char>(b);
        ++n_bytes;
      } else {
        flush();
        out.push_back(t);
      }
    }
    flush();
    return out;
  }
};

struct FuseDecoder : Decoder {
  std::vector<std::string> decode(std::vector<std::string> tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    return {all};
  }
};

struct StripDecoder : Decoder {
  std::string content;
  int64_t start, stop;
  std::vector<std::string> decode(std::vector<std::string> tokens) const override {
    for (auto& t : tokens) {
      for (int64_t i = 0; i < start && t.compare(0, content.size(), content) == 0 && !content.empty(); ++i)
        t.erase(0, content.size());
      for (int64_t i = 0; i < stop && t.size() >= content.size() && !content.empty() &&
                          t.compare(t.size() - content.size(), content.size(), content) == 0;
           ++i)
        t.erase(t.size() - content.size());
    }
    return tokens;
  }
};

struct MetaspaceDecoder : Decoder {
  std::string replacement = "\xE2\x96\x81";
  bool prepend = true;
  std::vector<std::string> decode(std::vector<std::string> tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      tokens[i] = replace_all(tokens[i], find_literal(tokens[i], replacement), " ");
      if (i == 0 && prepend && !tokens[i].empty() && tokens[i][0] == ' ') tokens[i].erase(0, 1);
    }
    return tokens;
  }
};

struct WordPieceDecoder : Decoder {
  std::string prefix = "##";
  bool cleanup = true;
  std::vector<std::string> decode(std::vector<std::string> tokens) const override {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string t = tokens[i];
      if (i > 0) {
        if (t.compare(0, prefix.size(), prefix) == 0) t.erase(0, prefix.size());
        else t = " " + t;
      }
      out += t;
    }
    if (cleanup)  // tokenizers' cleanup(): no space before punctuation and contractions
      for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
               {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"}, {" 'm", "'m"},
               {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}})
        out = replace_all(out, find_literal(out, from), to);
    return {out};
  }
};

struct DecoderSequence : Decoder {
  std::vector<std::unique_ptr<Decoder>> stages;
  std::vector<std::string> decode(std::vector<std::string> tokens) const override {
    for (const auto& s : stages) tokens = s->decode(std::move(tokens));
    return tokens;
  }
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const JsonRef& j) {
  const std::string type = j.type();
  if (type == "NFC") return std::make_unique<UnicodeNorm>(UTF8PROC_COMPOSE);
  if (type == "NFD") return std::make_unique<UnicodeNorm>(UTF8PROC_DECOMPOSE);
  if (type == "NFKC") return std::make_unique<UnicodeNorm>(UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  if (type == "NFKD") return std::make_unique<UnicodeNorm>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "Precompiled") return std::make_unique<Precompiled>();
  if (type == "Strip") return std::make_unique<Strip>(j.flag("strip_left", true), j.flag("strip_right", true));
  if (type == "Prepend") {
    auto p = std::make_unique<Prepend>();
    p->prefix = j.str("prepend");
    return p;
  }
  if (type == "Replace") return std::make_unique<Replace>(j);
  if (type == "BertNormalizer") {
    auto b = std::make_unique<BertNormalizer>();
    b->clean_text = j.flag("clean_text", true);
    b->chinese = j.flag("handle_chinese_chars", true);
    b->lowercase = j.flag("lowercase", true);
    b->strip_accents = j.flag("strip_accents", b->lowercase);  // null: follows lowercase
    return b;
  }
  if (type == "Sequence") {
    auto s = std::make_unique<NormalizerSequence>();
    const JsonRef list = j.child("normalizers");
    if (!list.j.is_array()) j.fail("Sequence needs a \"normalizers\" array");
    for (size_t i = 0; i < list.j.size(); ++i) s->stages.push_back(make_normalizer(list.item(i)));
    return s;
  }
  j.fail("normalizer type '" + type + "' is not supported");
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonRef& j) {
  const std::string type = j.type();
  if (type == "Split") return std::make_unique<Split>(j);
  if (type == "ByteLevel") {
    auto b = std::make_unique<ByteLevel>();
    b->add_prefix_space = j.flag("add_prefix_space", true);
    b->use_regex = j.flag("use_regex", true);
    return b;
  }
  if (type == "Metaspace") {
    auto m = std::make_unique<Metaspace>();
    m->replacement = j.str("replacement", m->replacement);
    if (j.has("prepend_scheme")) m->prepend_scheme = j.str("prepend_scheme");
    else if (j.has("add_prefix_space")) m->prepend_scheme = j.flag("add_prefix_space", true) ? "always" : "never";
    if (m->prepend_scheme != "always" && m->prepend_scheme != "first" && m->prepend_scheme != "never")
      j.fail("unknown prepend_scheme '" + m->prepend_scheme + "'");
    m->split_on_replacement = j.flag("split", true);
    return m;
  }
  auto r = std::make_unique<RegexSplit>();
  if (type == "Whitespace") {
    r->steps.emplace_back(std::make_unique<Regex>(R"(\w+|[^\w\s]+)"), Behavior::Removed);
    r->invert_first = true;
  } else if (type == "WhitespaceSplit") {
    r->steps.emplace_back(std::make_unique<Regex>(R"(\s+)"), Behavior::Removed);
  } else if (type == "BertPreTokenizer") {
    r->steps.emplace_back(std::make_unique<Regex>(R"(\s+)"), Behavior::Removed);
    r->steps.emplace_back(std::make_unique<Regex>(kPunctuation), Behavior::Isolated);
  } else if (type == "Punctuation") {
    r->steps.emplace_back(std::make_unique<Regex>(kPunctuation), parse_behavior(j, Behavior::Isolated));
  } else if (type == "Digits") {
    r->steps.emplace_back(std::make_unique<Regex>(j.flag("individual_digits", false) ? R"(\p{Nd})" : R"(\p{Nd}+)"),
                          Behavior::Isolated);
  } else if (type == "Sequence") {
    auto s = std::make_unique<PreTokenizerSequence>();
    const JsonRef list = j.child("pretokenizers");
    if (!list.j.is_array()) j.fail("Sequence needs a \"pretokenizers\" array");
    for (size_t i = 0; i < list.j.size(); ++i) s->stages.push_back(make_pre_tokenizer(list.item(i)));
    return s;
  } else {
    j.fail("pre-tokenizer type '" + type + "' is not supported");
  }
  return r;
}

std::unique_ptr<Decoder> make_decoder(const JsonRef& j) {
  const std::string type = j.type();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace") return std::make_unique<ReplaceDecoder>(j);
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    auto s = std::make_unique<StripDecoder>();
    s->content = j.str("content", " ");
    s->start = j.integer("start", 0);
    s->stop = j.integer("stop", 0);
    return s;
  }
  if (type == "Metaspace") {
    auto m = std::make_unique<MetaspaceDecoder>();
    m->replacement = j.str("replacement", m->replacement);
    std::string scheme = j.has("prepend_scheme") ? j.str("prepend_scheme") : (j.flag("add_prefix_space", true) ? "always" : "never");
    m->prepend = scheme != "never";
    return m;
  }
  if (type == "WordPiece") {
    auto w = std::make_unique<WordPieceDecoder>();
    w->prefix = j.str("prefix", "##");
    w->cleanup = j.flag("cleanup", true);
    return w;
  }
  if (type == "Sequence") {
    auto s = std::make_unique<DecoderSequence>();
    const JsonRef list = j.child("decoders");
    if (!list.j.is_array()) j.fail("Sequence needs a \"decoders\" array");
    for (size_t i = 0; i < list.j.size(); ++i) s->stages.push_back(make_decoder(list.item(i)));
    return s;
  }
  j.fail("decoder type '" + type + "' is not supported");
}

}  // namespace chassis::hf
