// jinja2's lexer rules, restated: where text ends, how `-`/`+` and trim/lstrip_blocks eat whitespace,
// and the tokens inside {{ }} and {% %}.
#include "tokenizer/jinja/lexer.h"

#include <cstring>

#include "tokenizer/jinja/value.h"
#include "tokenizer/unicode.h"

namespace chassis::jinja {
namespace {

// Python's str.splitlines() boundaries; jinja2 joins the lines with "\n" and drops one trailing newline.
std::string normalize_newlines(std::string_view src) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size();) {
    unsigned char c = src[i];
    if (c == '\r') {
      out += '\n';
      i += (i + 1 < src.size() && src[i + 1] == '\n') ? 2 : 1;
    } else if (c == '\n' || c == '\v' || c == '\f' || c == 0x1c || c == 0x1d || c == 0x1e) {
      out += '\n';
      ++i;
    } else if (c == 0xc2 && i + 1 < src.size() && static_cast<unsigned char>(src[i + 1]) == 0x85) {
      out += '\n';
      i += 2;
    } else if (c == 0xe2 && i + 2 < src.size() && static_cast<unsigned char>(src[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(src[i + 2]) == 0xa8 || static_cast<unsigned char>(src[i + 2]) == 0xa9)) {
      out += '\n';
      i += 3;
    } else {
      out += static_cast<char>(c);
      ++i;
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool is_space_byte(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Python's str.rstrip() (all Unicode whitespace).
std::string rstrip_unicode(const std::string& s) {
  std::vector<uint32_t> cps = code_points(s);
  size_t n = cps.size();
  while (n > 0 && is_python_space(cps[n - 1])) --n;
  return from_code_points(cps.data(), n);
}

// Length of the run of Unicode whitespace at the start of s (regex \s*).
size_t leading_space(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len = utf8_len(static_cast<uint8_t>(s[i]));
    if (i + len > s.size()) break;
    std::vector<uint32_t> cp = utf8_decode(s.substr(i, len));
    if (cp.size() != 1 || !is_python_space(cp[0])) break;
    i += len;
  }
  return i;
}

bool all_space(std::string_view s) { return !s.empty() && leading_space(s) == s.size(); }

class Lexer {
 public:
  explicit Lexer(std::string src) : src_(std::move(src)) {}

  std::vector<Token> run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t start = find_tag(pos_);
      std::string text = src_.substr(pos_, start - pos_);
      if (start == src_.size()) {
        emit_text(text);
        pos_ = start;
        break;
      }
      char type = src_[start + 1];  // '{', '%' or '#'
      char sign = start + 2 < src_.size() ? src_[start + 2] : 0;
      bool has_sign = sign == '-' || sign == '+';
      if (sign == '-') {
        text = rstrip_unicode(text);
      } else if (sign != '+' && type != '{') {  // lstrip_blocks: blocks and comments, not variables
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if ((l_pos > 0 || line_starting) && all_space(std::string_view(text).substr(l_pos))) text.resize(l_pos);
      }
      emit_text(text);
      advance_to(start);
      size_t body = start + 2 + (has_sign ? 1 : 0);
      if (type == '#') {
        line_starting = lex_comment(body);
      } else if (type == '%' && is_raw(body)) {
        line_starting = lex_raw(body);
      } else {
        advance_to(body);
        line_starting = lex_tag(type == '%');
      }
    }
    tokens_.push_back({Token::Kind::End, "", line_});
    return std::move(tokens_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i)
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return src_.size();
  }

  void advance_to(size_t p) {
    for (size_t i = pos_; i < p; ++i)
      if (src_[i] == '\n') ++line_;
    pos_ = p;
  }

  void emit_text(const std::string& text) {
    if (!text.empty()) tokens_.push_back({Token::Kind::Text, text, line_});
  }

  [[noreturn]] void fail(const std::string& message) const { throw TemplateError(message, line_); }

  // Consumes a tag end at pos_ ("-%}" eats all following whitespace, "+%}" none, "%}" one newline);
  // returns whether the consumed text ended with a newline (jinja2's line_starting).
  bool consume_end(const char* end, bool trim_blocks) {
    size_t n = std::strlen(end);
    bool minus = src_[pos_] == '-', plus = src_[pos_] == '+';
    advance_to(pos_ + n + (minus || plus ? 1 : 0));
    if (minus) {
      size_t ws = leading_space(std::string_view(src_).substr(pos_));
      advance_to(pos_ + ws);
      return ws > 0 && src_[pos_ - 1] == '\n';
    }
    if (!plus && trim_blocks && pos_ < src_.size() && src_[pos_] == '\n') {
      advance_to(pos_ + 1);
      return true;
    }
    return false;
  }

  bool at_end_marker(const char* end, bool allow_plus) const {
    size_t n = std::strlen(end);
    if (src_.compare(pos_, n, end) == 0) return true;
    if ((src_[pos_] == '-' || (allow_plus && src_[pos_] == '+')) && src_.compare(pos_ + 1, n, end) == 0) return true;
    return false;
  }

  bool lex_comment(size_t body) {
    advance_to(body);
    while (pos_ < src_.size() && !at_end_marker("#}", true)) advance_to(pos_ + 1);
    if (pos_ >= src_.size()) fail("Missing end of comment tag");
    return consume_end("#}", true);
  }

  bool is_raw(size_t body) const {
    size_t p = body;
    while (p < src_.size() && is_space_byte(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    while (p < src_.size() && is_space_byte(src_[p])) ++p;
    return src_.compare(p, 2, "%}") == 0 || src_.compare(p, 3, "-%}") == 0 || src_.compare(p, 3, "+%}") == 0;
  }

  bool lex_raw(size_t body) {
    advance_to(body);
    while (is_space_byte(src_[pos_])) advance_to(pos_ + 1);
    advance_to(pos_ + 3);  // "raw"
    while (is_space_byte(src_[pos_])) advance_to(pos_ + 1);
    consume_end("%}", true);
    // The raw text runs to the first {% endraw %} (whitespace control allowed on both sides).
    size_t search = pos_;
    while (true) {
      size_t open = src_.find("{%", search);
      if (open == std::string::npos) fail("Missing end of raw directive");
      size_t p = open + 2;
      bool minus = p < src_.size() && src_[p] == '-';
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
      while (p < src_.size() && is_space_byte(src_[p])) ++p;
      if (src_.compare(p, 6, "endraw") != 0) {
        search = open + 2;
        continue;
      }
      p += 6;
      while (p < src_.size() && is_space_byte(src_[p])) ++p;
      if (!(src_.compare(p, 2, "%}") == 0 || src_.compare(p, 3, "-%}") == 0 || src_.compare(p, 3, "+%}") == 0)) {
        search = open + 2;
        continue;
      }
      std::string text = src_.substr(pos_, open - pos_);
      if (minus) text = rstrip_unicode(text);
      emit_text(text);
      advance_to(p);
      return consume_end("%}", true);
    }
  }

  bool lex_tag(bool block) {
    const char* end = block ? "%}" : "}}";
    tokens_.push_back({block ? Token::Kind::BlockBegin : Token::Kind::VariableBegin, "", line_});
    std::vector<char> balance;
    while (true) {
      while (pos_ < src_.size() && is_space_byte(src_[pos_])) advance_to(pos_ + 1);
      if (pos_ >= src_.size()) fail(block ? "Unexpected end of template: missing '%}'" : "Unexpected end of template: missing '}}'");
      if (balance.empty() && at_end_marker(end, block)) {
        tokens_.push_back({block ? Token::Kind::BlockEnd : Token::Kind::VariableEnd, "", line_});
        return consume_end(end, block);
      }
      char c = src_[pos_];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = pos_;
        while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
        tokens_.push_back({Token::Kind::Name, src_.substr(pos_, e - pos_), line_});
        advance_to(e);
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        lex_number();
      } else if (c == '\'' || c == '"') {
        lex_string(c);
      } else {
        lex_operator(balance);
      }
    }
  }

  void lex_number() {
    size_t e = pos_;
    auto digits = [&] {
      while (e < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[e])) ||
                                 (src_[e] == '_' && e + 1 < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e + 1])))))
        ++e;
    };
    digits();
    bool is_float = false;
    if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
      ++e;
      digits();
      is_float = true;
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t m = e + 1;
      if (m < src_.size() && (src_[m] == '+' || src_[m] == '-')) ++m;
      if (m < src_.size() && std::isdigit(static_cast<unsigned char>(src_[m]))) {
        e = m;
        digits();
        is_float = true;
      }
    }
    std::string spelled;
    for (size_t i = pos_; i < e; ++i)
      if (src_[i] != '_') spelled += src_[i];
    Token t{is_float ? Token::Kind::Float : Token::Kind::Integer, spelled, line_};
    if (is_float) {
      t.number = std::strtod(spelled.c_str(), nullptr);
    } else {
      errno = 0;
      t.integer = std::strtoll(spelled.c_str(), nullptr, 10);
      if (errno == ERANGE) fail("integer literal " + spelled + " is too large");
    }
    tokens_.push_back(t);
    advance_to(e);
  }

  // jinja2 finds no string token, and its operator rule then rejects the quote.
  [[noreturn]] void unterminated_string() const {
    std::string quote = src_[pos_] == '\'' ? "\"'\"" : "'\"'";
    fail("unexpected char " + quote + " at " + std::to_string(pos_));
  }

  // Python string escapes as jinja2 decodes them ("unicode-escape"); unknown escapes keep the backslash.
  void lex_string(char quote) {
    int start_line = line_;
    size_t p = pos_ + 1;
    std::string value;
    while (true) {
      if (p >= src_.size()) unterminated_string();
      char c = src_[p];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) unterminated_string();
      char e = src_[p + 1];
      p += 2;
      auto hex = [&](int n) -> uint32_t {
        if (p + n > src_.size()) fail("truncated \\x/\\u escape in a string literal");
        uint32_t v = 0;
        for (int i = 0; i < n; ++i) {
          char h = src_[p + i];
          if (!std::isxdigit(static_cast<unsigned char>(h))) fail("truncated \\x/\\u escape in a string literal");
          v = v * 16 + (std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
        }
        p += n;
        return v;
      };
      switch (e) {
        case '\n': break;  // line continuation
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case 'a': value += '\a'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'n': value += '\n'; break;
        case 'r': value += '\r'; break;
        case 't': value += '\t'; break;
        case 'v': value += '\v'; break;
        case 'x': utf8_append(value, hex(2)); break;
        case 'u': utf8_append(value, hex(4)); break;
        case 'U': utf8_append(value, hex(8)); break;
        default:
          if (e >= '0' && e <= '7') {  // octal, up to three digits
            uint32_t v = e - '0';
            for (int i = 0; i < 2 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7'; ++i) v = v * 8 + (src_[p++] - '0');
            utf8_append(value, v);
          } else {
            value += '\\';
            value += e;
          }
      }
    }
    tokens_.push_back({Token::Kind::String, value, start_line});
    advance_to(p + 1);
  }

  void lex_operator(std::vector<char>& balance) {
    static const char* kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kTwo)
      if (src_.compare(pos_, 2, op) == 0) {
        tokens_.push_back({Token::Kind::Operator, op, line_});
        advance_to(pos_ + 2);
        return;
      }
    char c = src_[pos_];
    if (!std::strchr("+-/*%~[](){}<>=.:|,;", c)) {
      std::string shown = c == '\'' ? "\"'\"" : std::string("'") + c + "'";
      fail("unexpected char " + shown + " at " + std::to_string(pos_));
    }
    if (c == '(' || c == '[' || c == '{') {
      balance.push_back(c == '(' ? ')' : (c == '[' ? ']' : '}'));
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance.empty()) fail(std::string("unexpected '") + c + "'");
      if (balance.back() != c) fail(std::string("unexpected '") + c + "', expected '" + balance.back() + "'");
      balance.pop_back();
    }
    tokens_.push_back({Token::Kind::Operator, std::string(1, c), line_});
    advance_to(pos_ + 1);
  }

  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(normalize_newlines(source)).run(); }

}  // namespace chassis::jinja
