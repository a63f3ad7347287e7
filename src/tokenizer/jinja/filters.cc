// jinja2's built-in filters and tests (the ones templates use; an unknown name is a compile error,
// as in jinja2), with transformers' tojson replacing jinja2's HTML-escaping one.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/text.h"
#include "tokenizer/unicode.h"

namespace chassis::jinja {
namespace {

using Filter = std::function<Value(const Value&, const Args&)>;
using Test = std::function<bool(const Value&, const Args&)>;

const std::map<std::string, Filter>& filters();
const std::map<std::string, Test>& tests();

// Attribute lookup by a dotted path, as jinja2's make_attrgetter ("a.b", or an integer index).
Value attribute_path(const Value& item, const Value& path) {
  if (path.is_number()) return get_item(item, path);
  Value cur = item;
  const std::string dot = ".";
  for (const std::string& part : py_split(path.str(), &dot, -1)) {
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    cur = get_item(cur, digits ? Value(static_cast<int64_t>(std::stoll(part))) : Value(part));
    if (cur.is_undefined()) break;
  }
  return cur;
}

Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(py_lower(v.as_string()));
  return v;
}

// select/reject/selectattr/rejectattr share this: keep items whose (attribute's) test result is `keep`.
Value select_items(const Value& seq, const Args& a, bool by_attribute, bool keep) {
  size_t next = 0;
  Value attr;
  if (by_attribute) attr = a.get(next++, "attribute");
  std::string test_name;
  CallArgs test_args;
  if (a.positional() > next) {
    test_name = a.raw().positional[next].str();
    test_args.positional.assign(a.raw().positional.begin() + static_cast<long>(next) + 1, a.raw().positional.end());
  }
  if (!test_name.empty() && !tests().count(test_name)) throw TemplateError("No test named '" + test_name + "'.");
  List out;
  if (!seq.truthy()) return Value::list();  // jinja2 guards with `if value:` (None selects nothing)
  for (const Value& item : iterate(seq)) {
    Value subject = by_attribute ? attribute_path(item, attr) : item;
    bool pass = test_name.empty() ? subject.truthy() : tests().at(test_name)(subject, Args(test_args, test_name));
    if (pass == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

std::string indent_text(const std::string& s, const Value& width, bool first, bool blank) {
  int64_t spaces = width.is_string() || width.is_undefined() ? 4 : width.as_int();
  if (spaces < 0) spaces = 0;
  if (spaces > 1024) throw TemplateError("indent width is too large");
  std::string indention = width.is_string() ? width.as_string() : std::string(static_cast<size_t>(spaces), ' ');
  std::vector<std::string> lines = py_splitlines(s + "\n");
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + indention : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : indention + lines[i]);
  }
  return first ? indention + rv : rv;
}

const std::map<std::string, Filter>& filters() {
  static const std::map<std::string, Filter> table = [] {
    std::map<std::string, Filter> f;
    f["abs"] = [](const Value& v, const Args&) {
      if (v.is_float()) return Value(std::fabs(v.as_double()));
      if (v.is_number()) return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
      throw TemplateError("bad operand type for abs(): '" + v.type_name() + "'");
    };
    f["attr"] = [](const Value& v, const Args& a) { return get_attribute(v, a.str(0, "name", "")); };
    f["capitalize"] = [](const Value& v, const Args&) { return Value(py_capitalize(v.str())); };
    f["center"] = [](const Value& v, const Args& a) {
      std::string s = v.str();
      int64_t width = a.integer(0, "width", 80), len = static_cast<int64_t>(code_points(s).size());
      if (width > static_cast<int64_t>(kMaxStringBytes)) throw TemplateError("center width is too large");
      if (width <= len) return Value(s);
      int64_t pad = width - len, left = pad / 2 + (pad & width & 1);
      return Value(std::string(static_cast<size_t>(left), ' ') + s + std::string(static_cast<size_t>(pad - left), ' '));
    };
    f["length"] = [](const Value& v, const Args&) { return Value(static_cast<int64_t>(v.length())); };
    f["count"] = f["length"];
    f["default"] = [](const Value& v, const Args& a) {
      bool boolean = a.flag(1, "boolean", false);
      if (v.is_undefined() || (boolean && !v.truthy())) return a.get(0, "default_value", Value(""));
      return v;
    };
    f["d"] = f["default"];
    f["dictsort"] = [](const Value& v, const Args& a) {
      if (!v.is_dict()) throw TemplateError("dictsort filter expects a dict, got " + v.type_name());
      bool cs = a.flag(0, "case_sensitive", false), reverse = a.flag(2, "reverse", false);
      std::string by = a.str(1, "by", "key");
      List pairs;
      for (const auto& [k, x] : v.entries().items) pairs.push_back(Value::tuple({Value(k), x}));
      size_t pos = by == "key" ? 0 : 1;
      std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
        int c = compare(sort_key(x.items()[pos], cs), sort_key(y.items()[pos], cs));
        return reverse ? c > 0 : c < 0;
      });
      return Value::list(std::move(pairs));
    };
    f["escape"] = [](const Value& v, const Args&) { return v.is_markup() ? v : Value::markup(html_escape(v.str())); };
    f["e"] = f["escape"];
    f["first"] = [](const Value& v, const Args&) {
      List items = iterate(v);
      return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
    };
    f["last"] = [](const Value& v, const Args&) {
      List items = iterate(v);
      return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
    };
    f["float"] = [](const Value& v, const Args& a) {
      if (v.is_number()) return Value(v.as_double());
      if (v.is_string()) {
        std::string s = py_strip(v.as_string(), nullptr, true, true);
        char* end = nullptr;
        double d = std::strtod(s.c_str(), &end);
        if (!s.empty() && end == s.c_str() + s.size()) return Value(d);
      }
      return a.get(0, "default", Value(0.0));
    };
    f["int"] = [](const Value& v, const Args& a) {
      if (v.is_float()) return Value(static_cast<int64_t>(v.as_double()));
      if (v.is_number()) return Value(v.as_int());
      if (v.is_string()) {
        std::string s = py_strip(v.as_string(), nullptr, true, true);
        char* end = nullptr;
        errno = 0;
        long long i = std::strtoll(s.c_str(), &end, static_cast<int>(a.integer(1, "base", 10)));
        if (!s.empty() && end == s.c_str() + s.size() && errno == 0) return Value(static_cast<int64_t>(i));
        double d = std::strtod(s.c_str(), &end);
        if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d)) return Value(static_cast<int64_t>(d));
      }
      return a.get(0, "default", Value(int64_t{0}));
    };
    f["format"] = [](const Value& v, const Args& a) {
      return Value(percent_format(v.str(), Value::tuple(a.raw().positional)));
    };
    f["indent"] = [](const Value& v, const Args& a) {
      return Value(indent_text(v.str(), a.get(0, "width"), a.flag(1, "first", false), a.flag(2, "blank", false)));
    };
    f["items"] = [](const Value& v, const Args&) {
      if (v.is_undefined()) return Value::list();
      if (!v.is_dict()) throw TemplateError("Can only get item pairs from a mapping.");
      List out;
      for (const auto& [k, x] : v.entries().items) out.push_back(Value::tuple({Value(k), x}));
      return Value::list(std::move(out));
    };
    f["join"] = [](const Value& v, const Args& a) {
      std::string sep = a.str(0, "d", "");
      Value attr = a.get(1, "attribute");
      std::string out;
      bool first = true;
      for (const Value& item : iterate(v)) {
        if (!first) out += sep;
        out += (attr.is_undefined() || attr.is_none() ? item : attribute_path(item, attr)).str();
        first = false;
      }
      return Value(out);
    };
    f["list"] = [](const Value& v, const Args&) { return Value::list(iterate(v)); };
    f["lower"] = [](const Value& v, const Args&) { return Value(py_lower(v.str())); };
    f["upper"] = [](const Value& v, const Args&) { return Value(py_upper(v.str())); };
    f["title"] = [](const Value& v, const Args&) {
      // jinja2's title: capitalize each word, words starting after whitespace, -, (, {, [ or <.
      std::string s = v.str(), out, word;
      auto flush = [&] {
        if (!word.empty()) out += py_capitalize(word);
        word.clear();
      };
      for (uint32_t cp : code_points(s)) {
        bool sep = is_python_space(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
        if (sep) {
          flush();
          utf8_append(out, cp);
        } else {
          utf8_append(word, cp);
        }
      }
      flush();
      return Value(out);
    };
    f["map"] = [](const Value& v, const Args& a) {
      List out;
      if (!v.truthy()) return Value::list();  // jinja2 guards with `if value:`
      if (a.has(99, "attribute")) {
        Value attr = a.get(99, "attribute"), def = a.get(99, "default");
        for (const Value& item : iterate(v)) {
          Value x = attribute_path(item, attr);
          out.push_back(x.is_undefined() && !def.is_undefined() ? def : x);
        }
      } else {
        if (a.positional() == 0) throw TemplateError("map requires a filter argument");
        std::string name = a.raw().positional[0].str();
        if (!filters().count(name)) throw TemplateError("No filter named '" + name + "'.");
        CallArgs rest;
        rest.positional.assign(a.raw().positional.begin() + 1, a.raw().positional.end());
        rest.keyword = a.raw().keyword;
        for (const Value& item : iterate(v)) out.push_back(filters().at(name)(item, Args(rest, name)));
      }
      return Value::list(std::move(out));
    };
    auto extreme = [](bool want_max) {
      return [want_max](const Value& v, const Args& a) {
        bool cs = a.flag(0, "case_sensitive", false);
        Value attr = a.get(1, "attribute");
        List items = iterate(v);
        if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
        size_t best = 0;
        for (size_t i = 1; i < items.size(); ++i) {
          Value x = attr.is_undefined() ? items[i] : attribute_path(items[i], attr);
          Value y = attr.is_undefined() ? items[best] : attribute_path(items[best], attr);
          int c = compare(sort_key(x, cs), sort_key(y, cs));
          if (want_max ? c > 0 : c < 0) best = i;
        }
        return items[best];
      };
    };
    f["max"] = extreme(true);
    f["min"] = extreme(false);
    f["select"] = [](const Value& v, const Args& a) { return select_items(v, a, false, true); };
    f["reject"] = [](const Value& v, const Args& a) { return select_items(v, a, false, false); };
    f["selectattr"] = [](const Value& v, const Args& a) { return select_items(v, a, true, true); };
    f["rejectattr"] = [](const Value& v, const Args& a) { return select_items(v, a, true, false); };
    f["replace"] = [](const Value& v, const Args& a) {
      return Value(py_replace(v.str(), a.get(0, "old").str(), a.get(1, "new").str(), a.integer(2, "count", -1)));
    };
    f["reverse"] = [](const Value& v, const Args&) {
      if (v.is_string()) {
        std::vector<uint32_t> cps = code_points(v.as_string());
        std::reverse(cps.begin(), cps.end());
        return Value(from_code_points(cps.data(), cps.size()));
      }
      List items = iterate(v);
      std::reverse(items.begin(), items.end());
      return Value::list(std::move(items));
    };
    f["round"] = [](const Value& v, const Args& a) {
      int64_t precision = a.integer(0, "precision", 0);
      std::string method = a.str(1, "method", "common");
      if (method != "common" && method != "ceil" && method != "floor")
        throw TemplateError("method must be 'common', 'ceil' or 'floor'");
      double x = v.as_double();
      if (method == "common") {
        // Python's round(): the exact binary value rounded half-even to `precision` decimals, which
        // is what glibc's correctly rounded %.*f computes.
        if (precision < 0 || precision > 300 || !std::isfinite(x)) return Value(x);
        char buf[400];
        std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(precision), x);
        return Value(std::strtod(buf, nullptr));
      }
      double scale = std::pow(10.0, static_cast<double>(precision));
      return Value((method == "ceil" ? std::ceil(x * scale) : std::floor(x * scale)) / scale);
    };
    f["safe"] = [](const Value& v, const Args&) { return v.is_markup() ? v : Value::markup(v.str()); };
    f["string"] = [](const Value& v, const Args&) { return Value(v.str()); };
    f["sort"] = [](const Value& v, const Args& a) {
      bool reverse = a.flag(0, "reverse", false), cs = a.flag(1, "case_sensitive", false);
      Value attr = a.get(2, "attribute");
      List items = iterate(v);
      std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        Value kx = attr.is_undefined() || attr.is_none() ? x : attribute_path(x, attr);
        Value ky = attr.is_undefined() || attr.is_none() ? y : attribute_path(y, attr);
        int c = compare(sort_key(kx, cs), sort_key(ky, cs));
        return reverse ? c > 0 : c < 0;
      });
      return Value::list(std::move(items));
    };
    f["sum"] = [](const Value& v, const Args& a) {
      Value attr = a.get(0, "attribute"), total = a.get(1, "start", Value(int64_t{0}));
      for (const Value& item : iterate(v)) {
        Value x = attr.is_undefined() || attr.is_none() ? item : attribute_path(item, attr);
        if (!x.is_number() || !total.is_number()) throw TemplateError("unsupported operand type(s) for +");
        total = (x.is_float() || total.is_float()) ? Value(total.as_double() + x.as_double()) : Value(total.as_int() + x.as_int());
      }
      return total;
    };
    f["tojson"] = [](const Value& v, const Args& a) {
      // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
      JsonOptions o;
      o.ensure_ascii = a.flag(0, "ensure_ascii", false);
      Value indent = a.get(1, "indent");
      if (indent.is_string()) o.indent_string = indent.as_string();
      else if (indent.is_number()) o.indent = static_cast<int>(indent.as_int());
      Value seps = a.get(2, "separators");
      if (seps.is_sequence() && seps.items().size() == 2) {
        o.item_separator = seps.items()[0].str();
        o.key_separator = seps.items()[1].str();
        if (o.item_separator.empty() || o.key_separator.empty())
          throw TemplateError("tojson: empty separators are not supported");
      }
      o.sort_keys = a.flag(3, "sort_keys", false);
      return Value(to_json(v, o));
    };
    f["trim"] = [](const Value& v, const Args& a) {
      Value chars = a.get(0, "chars");
      std::string c = chars.is_string() ? chars.as_string() : "";
      return Value(py_strip(v.str(), chars.is_string() ? &c : nullptr, true, true));
    };
    f["unique"] = [](const Value& v, const Args& a) {
      bool cs = a.flag(0, "case_sensitive", false);
      Value attr = a.get(1, "attribute");
      List out, seen;
      for (const Value& item : iterate(v)) {
        Value key = sort_key(attr.is_undefined() || attr.is_none() ? item : attribute_path(item, attr), cs);
        if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equal(s, key); })) {
          seen.push_back(key);
          out.push_back(item);
        }
      }
      return Value::list(std::move(out));
    };
    f["wordcount"] = [](const Value& v, const Args&) {
      return Value(static_cast<int64_t>(py_split(v.str(), nullptr, -1).size()));
    };
    return f;
  }();
  return table;
}

const std::map<std::string, Test>& tests() {
  static const std::map<std::string, Test> table = [] {
    std::map<std::string, Test> t;
    auto arg = [](const Args& a) { return a.get(0, "other"); };
    t["defined"] = [](const Value& v, const Args&) { return !v.is_undefined(); };
    t["undefined"] = [](const Value& v, const Args&) { return v.is_undefined(); };
    t["none"] = [](const Value& v, const Args&) { return v.is_none(); };
    t["boolean"] = [](const Value& v, const Args&) { return v.is_bool(); };
    t["true"] = [](const Value& v, const Args&) { return v.is_bool() && v.as_bool(); };
    t["false"] = [](const Value& v, const Args&) { return v.is_bool() && !v.as_bool(); };
    t["integer"] = [](const Value& v, const Args&) { return v.is_int(); };
    t["float"] = [](const Value& v, const Args&) { return v.is_float(); };
    t["number"] = [](const Value& v, const Args&) { return v.is_number(); };
    t["string"] = [](const Value& v, const Args&) { return v.is_string(); };
    t["mapping"] = [](const Value& v, const Args&) { return v.kind() == Value::Kind::Dict; };
    t["iterable"] = [](const Value& v, const Args&) {
      return v.is_undefined() || v.is_sequence() || v.kind() == Value::Kind::Dict || v.is_string();
    };
    t["sequence"] = [](const Value& v, const Args&) {
      return v.is_undefined() || v.is_sequence() || v.kind() == Value::Kind::Dict || v.is_string();
    };
    t["callable"] = [](const Value& v, const Args&) { return v.is_function(); };
    t["sameas"] = [arg](const Value& v, const Args& a) {
      Value o = arg(a);
      if (v.kind() != o.kind()) return false;
      if (v.is_none() || v.is_bool() || v.is_undefined()) return equal(v, o);
      return false;  // identity of other objects is not observable here
    };
    t["eq"] = [arg](const Value& v, const Args& a) { return equal(v, arg(a)); };
    t["equalto"] = t["eq"];
    t["=="] = t["eq"];
    t["ne"] = [arg](const Value& v, const Args& a) { return !equal(v, arg(a)); };
    t["!="] = t["ne"];
    t["lt"] = [arg](const Value& v, const Args& a) { return compare(v, arg(a)) < 0; };
    t["lessthan"] = t["lt"];
    t["<"] = t["lt"];
    t["le"] = [arg](const Value& v, const Args& a) { return compare(v, arg(a)) <= 0; };
    t["<="] = t["le"];
    t["gt"] = [arg](const Value& v, const Args& a) { return compare(v, arg(a)) > 0; };
    t["greaterthan"] = t["gt"];
    t[">"] = t["gt"];
    t["ge"] = [arg](const Value& v, const Args& a) { return compare(v, arg(a)) >= 0; };
    t[">="] = t["ge"];
    t["in"] = [](const Value& v, const Args& a) {
      Value seq = a.get(0, "seq");
      if (seq.is_string()) return v.is_string() && seq.as_string().find(v.as_string()) != std::string::npos;
      if (seq.is_dict()) return v.is_string() && seq.entries().find(v.as_string()) != nullptr;
      for (const Value& x : iterate(seq))
        if (equal(x, v)) return true;
      return false;
    };
    t["odd"] = [](const Value& v, const Args&) { return v.as_int() % 2 != 0; };
    t["even"] = [](const Value& v, const Args&) { return v.as_int() % 2 == 0; };
    t["divisibleby"] = [](const Value& v, const Args& a) {
      int64_t n = a.integer(0, "num", 1);
      if (n == 0) throw TemplateError("integer division or modulo by zero");
      return v.as_int() % n == 0;
    };
    t["lower"] = [](const Value& v, const Args&) { return v.is_string() && py_lower(v.as_string()) == v.as_string(); };
    t["upper"] = [](const Value& v, const Args&) { return v.is_string() && py_upper(v.as_string()) == v.as_string(); };
    t["escaped"] = [](const Value&, const Args&) { return false; };
    t["filter"] = [](const Value& v, const Args&) { return v.is_string() && filters().count(v.as_string()) > 0; };
    t["test"] = [](const Value& v, const Args&) { return v.is_string() && tests().count(v.as_string()) > 0; };
    return t;
  }();
  return table;
}

}  // namespace

bool has_filter(const std::string& name) { return filters().count(name) > 0; }
bool has_test(const std::string& name) { return tests().count(name) > 0; }

Value apply_filter(const std::string& name, const Value& operand, CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) throw TemplateError("No filter named '" + name + "'.");
  return it->second(operand, Args(args, name));
}

bool apply_test(const std::string& name, const Value& operand, CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) throw TemplateError("No test named '" + name + "'.");
  return it->second(operand, Args(args, name));
}

}  // namespace chassis::jinja
