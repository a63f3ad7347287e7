// Python's str methods on UTF-8, by code point; case mapping from utf8proc.
#include "tokenizer/jinja/text.h"

#include <utf8proc.h>

#include <algorithm>

#include "tokenizer/unicode.h"

namespace chassis::jinja {
namespace {

uint32_t map_case(uint32_t cp, int which) {
  auto c = static_cast<utf8proc_int32_t>(cp);
  return static_cast<uint32_t>(which == 0 ? utf8proc_toupper(c) : which == 1 ? utf8proc_tolower(c) : utf8proc_totitle(c));
}

bool is_cased_letter(uint32_t cp) {
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
}

// Python's str.upper() applies Unicode's SpecialCasing (one code point becoming several); utf8proc
// has only the simple mappings, so the unconditional special ones are listed here (the Greek
// iota-subscript forms are left out: no chat template upper-cases polytonic Greek).
const char* special_upper(uint32_t cp) {
  switch (cp) {
    case 0x00DF: return "SS";
    case 0x0149: return "\u02BCN";
    case 0x01F0: return "J\u030C";
    case 0x0390: return "\u0399\u0308\u0301";
    case 0x03B0: return "\u03A5\u0308\u0301";
    case 0x0587: return "\u0535\u0552";
    case 0x1E96: return "H\u0331";
    case 0x1E97: return "T\u0308";
    case 0x1E98: return "W\u030A";
    case 0x1E99: return "Y\u030A";
    case 0x1E9A: return "A\u02BE";
    case 0xFB00: return "FF";
    case 0xFB01: return "FI";
    case 0xFB02: return "FL";
    case 0xFB03: return "FFI";
    case 0xFB04: return "FFL";
    case 0xFB05:
    case 0xFB06: return "ST";
    case 0xFB13: return "\u0544\u0546";
    case 0xFB14: return "\u0544\u0535";
    case 0xFB15: return "\u0544\u053B";
    case 0xFB16: return "\u054E\u0546";
    case 0xFB17: return "\u0544\u053D";
    default: return nullptr;
  }
}

}  // namespace

std::string py_upper(const std::string& s) {
  std::string out;
  for (uint32_t cp : code_points(s)) {
    if (const char* special = special_upper(cp)) out += special;
    else utf8_append(out, map_case(cp, 0));
  }
  return out;
}

std::string py_lower(const std::string& s) {
  std::string out;
  for (uint32_t cp : code_points(s)) {
    if (cp == 0x0130) out += "i\u0307";  // SpecialCasing: İ lowers to i + combining dot
    else utf8_append(out, map_case(cp, 1));
  }
  return out;
}

std::string py_capitalize(const std::string& s) {
  std::string out;
  bool first = true;
  for (uint32_t cp : code_points(s)) {
    utf8_append(out, map_case(cp, first ? 2 : 1));
    first = false;
  }
  return out;
}

std::string py_title(const std::string& s) {
  std::string out;
  bool previous_cased = false;
  for (uint32_t cp : code_points(s)) {
    bool cased = is_cased_letter(cp);
    utf8_append(out, cased ? map_case(cp, previous_cased ? 1 : 2) : cp);
    previous_cased = cased;
  }
  return out;
}

std::string py_strip(const std::string& s, const std::string* chars, bool left, bool right) {
  std::vector<uint32_t> cps = code_points(s);
  std::vector<uint32_t> set = chars ? code_points(*chars) : std::vector<uint32_t>{};
  auto strip_this = [&](uint32_t cp) {
    return chars ? std::find(set.begin(), set.end(), cp) != set.end() : is_python_space(cp);
  };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && strip_this(cps[b])) ++b;
  if (right)
    while (e > b && strip_this(cps[e - 1])) --e;
  return from_code_points(cps.data() + b, e - b);
}

std::vector<std::string> py_split(const std::string& s, const std::string* sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (sep) {
    if (sep->empty()) throw TemplateError("empty separator");
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      size_t hit = s.find(*sep, start);
      if (hit == std::string::npos) break;
      out.push_back(s.substr(start, hit - start));
      start = hit + sep->size();
    }
    out.push_back(s.substr(start));
    return out;
  }
  std::vector<uint32_t> cps = code_points(s);
  size_t i = 0;
  while (true) {
    while (i < cps.size() && is_python_space(cps[i])) ++i;
    if (i == cps.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      size_t e = cps.size();
      while (e > i && is_python_space(cps[e - 1])) --e;
      out.push_back(from_code_points(cps.data() + i, e - i));
      break;
    }
    size_t j = i;
    while (j < cps.size() && !is_python_space(cps[j])) ++j;
    out.push_back(from_code_points(cps.data() + i, j - i));
    i = j;
  }
  return out;
}

std::vector<std::string> py_splitlines(const std::string& s) {
  std::vector<uint32_t> cps = code_points(s);
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    uint32_t c = cps[i];
    bool boundary = c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e ||
                    c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!boundary) continue;
    out.push_back(from_code_points(cps.data() + start, i - start));
    if (c == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < cps.size()) out.push_back(from_code_points(cps.data() + start, cps.size() - start));
  return out;
}

std::string py_replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` between every code point (and at both ends)
    std::vector<uint32_t> cps = code_points(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      if (i < cps.size()) utf8_append(out, cps[i]);
    }
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t hit = s.find(from, start);
    if (hit == std::string::npos) break;
    out += s.substr(start, hit - start) + to;
    start = hit + from.size();
    ++done;
  }
  return out + s.substr(start);
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value Args::get(size_t pos, const char* name, Value def) const {
  if (pos < a_.positional.size()) return a_.positional[pos];
  for (const auto& [k, v] : a_.keyword)
    if (k == name) return v;
  return def;
}

bool Args::has(size_t pos, const char* name) const {
  if (pos < a_.positional.size()) return true;
  for (const auto& [k, v] : a_.keyword)
    if (k == name) return true;
  return false;
}

std::string Args::str(size_t pos, const char* name, const std::string& def) const {
  Value v = get(pos, name);
  if (v.is_undefined() || v.is_none()) return def;
  if (!v.is_string()) throw TemplateError(fn_ + "() argument '" + name + "' must be str, not " + v.type_name());
  return v.as_string();
}

int64_t Args::integer(size_t pos, const char* name, int64_t def) const {
  Value v = get(pos, name);
  if (v.is_undefined() || v.is_none()) return def;
  if (!v.is_number() || v.is_float())
    throw TemplateError(fn_ + "() argument '" + name + "' must be int, not " + v.type_name());
  return v.as_int();
}

bool Args::flag(size_t pos, const char* name, bool def) const {
  Value v = get(pos, name);
  return v.is_undefined() ? def : v.truthy();
}

}  // namespace chassis::jinja
