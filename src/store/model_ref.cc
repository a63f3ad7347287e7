#include "store/model_ref.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace chassis::store {

namespace {

// The hub's repo name rules: letters, digits, '-', '_', '.', no "--" or "..", not starting or
// ending with '-' or '.', at most 96 characters.
bool valid_name_part(const std::string& s) {
  if (s.empty() || s.size() > 96) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  if (s.front() == '-' || s.front() == '.' || s.back() == '-' || s.back() == '.') return false;
  return s.find("--") == std::string::npos && s.find("..") == std::string::npos;
}

bool valid_revision(const std::string& r) {
  if (r.empty() || r.size() > 255 || r.find("..") != std::string::npos || r.front() == '/') return false;
  for (char c : r)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/')) return false;
  return true;
}

bool valid_file(const std::string& f) {
  if (f.empty() || f.front() == '/' || f.find('\\') != std::string::npos) return false;
  size_t start = 0;
  while (start <= f.size()) {
    const size_t slash = f.find('/', start);
    const std::string part = f.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

std::string upper(std::string s) {
  for (auto& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

const std::vector<std::string>& known_quants() {
  // Longest first, so that Q4_K_M is found before Q4_K.
  static const std::vector<std::string> q = {
      "IQ4_NL", "IQ4_XS", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M",
      "Q2_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8",
      "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "BF16", "F16", "F32"};
  return q;
}

}  // namespace

std::string ModelRef::text() const {
  std::string t = repo;
  if (!file.empty()) t += ":" + file;
  else if (!quant.empty()) t += ":" + quant;
  if (revision_given) t += "@" + revision;
  return t;
}

std::optional<ModelRef> parse_model_ref(const std::string& text) {
  ModelRef ref;
  std::string rest = text;
  const size_t at = rest.rfind('@');
  if (at != std::string::npos) {
    ref.revision = rest.substr(at + 1);
    ref.revision_given = true;
    rest = rest.substr(0, at);
    if (!valid_revision(ref.revision)) return std::nullopt;
  } else {
    ref.revision = "main";
  }
  const size_t colon = rest.find(':');
  std::string selector;
  if (colon != std::string::npos) {
    selector = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (selector.empty()) return std::nullopt;
  }
  const size_t slash = rest.find('/');
  if (slash == std::string::npos || rest.find('/', slash + 1) != std::string::npos) return std::nullopt;
  if (!valid_name_part(rest.substr(0, slash)) || !valid_name_part(rest.substr(slash + 1))) return std::nullopt;
  ref.repo = rest;
  if (!selector.empty()) {
    std::string lower = selector;
    for (auto& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (lower.size() > 5 && lower.compare(lower.size() - 5, 5, ".gguf") == 0) {
      if (!valid_file(selector)) return std::nullopt;
      ref.file = selector;
    } else {
      ref.quant = upper(selector);
      for (char c : ref.quant)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return std::nullopt;
    }
  }
  return ref;
}

bool file_has_quant(const std::string& filename, const std::string& quant) {
  const size_t slash = filename.rfind('/');
  std::string f = upper(filename.substr(slash == std::string::npos ? 0 : slash + 1));
  if (f.size() < 5 || f.compare(f.size() - 5, 5, ".GGUF") != 0) return false;
  f.resize(f.size() - 5);
  const std::string q = upper(quant);
  if (q.empty()) return false;
  // A whole token: separated by '-', '.' or '_' on the left and '-' or '.' on the right ('_' would
  // continue the type's own name: Q4_K is not Q4_K_M).
  for (size_t pos = f.find(q); pos != std::string::npos; pos = f.find(q, pos + 1)) {
    const bool left = pos == 0 || f[pos - 1] == '-' || f[pos - 1] == '.' || f[pos - 1] == '_';
    const size_t end = pos + q.size();
    const bool right = end == f.size() || f[end] == '-' || f[end] == '.';
    if (left && right) return true;
  }
  return false;
}

std::string quant_of_filename(const std::string& filename) {
  for (const auto& q : known_quants())
    if (file_has_quant(filename, q)) return q;
  return "";
}

}  // namespace chassis::store
