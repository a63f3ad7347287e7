// Python string operations on UTF-8 text (by code point), shared by the Jinja methods and filters.
#pragma once
#include <string>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace chassis::jinja {

std::string py_upper(const std::string& s);
std::string py_lower(const std::string& s);
std::string py_capitalize(const std::string& s);  // str.capitalize
std::string py_title(const std::string& s);       // str.title
// str.strip/lstrip/rstrip: `chars` null strips Unicode whitespace.
std::string py_strip(const std::string& s, const std::string* chars, bool left, bool right);
// str.split: no separator splits on whitespace runs; maxsplit < 0 is unlimited.
std::vector<std::string> py_split(const std::string& s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> py_splitlines(const std::string& s);
// markupsafe.escape: & < > " ' as HTML entities.
std::string html_escape(const std::string& s);
std::string py_replace(const std::string& s, const std::string& from, const std::string& to, int64_t count);

// Args binds a builtin's arguments by position or keyword with defaults, as Python does.
class Args {
 public:
  Args(const CallArgs& a, std::string fn) : a_(a), fn_(std::move(fn)) {}
  Value get(size_t pos, const char* name, Value def = Value()) const;
  bool has(size_t pos, const char* name) const;
  size_t positional() const { return a_.positional.size(); }
  const CallArgs& raw() const { return a_; }
  std::string str(size_t pos, const char* name, const std::string& def) const;
  int64_t integer(size_t pos, const char* name, int64_t def) const;
  bool flag(size_t pos, const char* name, bool def) const;

 private:
  const CallArgs& a_;
  std::string fn_;
};

}  // namespace chassis::jinja
