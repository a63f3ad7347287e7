// The sandbox's attribute rules, Python's str/dict/list methods, iteration, slicing, `%` formatting
// and the globals transformers gives chat templates (raise_exception, strftime_now).
#include "tokenizer/jinja/builtins.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <optional>
#include <set>

#include "tokenizer/jinja/text.h"
#include "tokenizer/unicode.h"

namespace chassis::jinja {
namespace {

// Methods the immutable sandbox refuses (jinja2's _mutable_spec).
const std::set<std::string>& mutating_methods() {
  static const std::set<std::string> names = {"append", "extend", "insert", "pop", "remove", "clear", "sort",
                                              "reverse", "update", "setdefault", "popitem", "add", "discard",
                                              "difference_update", "intersection_update", "symmetric_difference_update"};
  return names;
}

std::string object_name(const Value& obj) {
  if (obj.is_none()) return "'None'";
  return "'" + obj.type_name() + " object'";
}

// jinja2 words a missing element without quotes around the owner ("list object has no element 5").
std::string element_owner(const Value& obj) { return obj.is_none() ? "None" : obj.type_name() + " object"; }

Value missing_attribute(const Value& obj, const std::string& name) {
  return Value::undefined(object_name(obj) + " has no attribute '" + name + "'");
}

Value string_list(const std::vector<std::string>& parts) {
  List out;
  for (const auto& p : parts) out.emplace_back(p);
  return Value::list(std::move(out));
}

bool matches_prefix(const std::string& s, const Value& prefix, bool at_end) {
  auto one = [&](const Value& p) {
    if (!p.is_string()) throw TemplateError("startswith/endswith first arg must be str or a tuple of str");
    const std::string& x = p.as_string();
    if (x.size() > s.size()) return false;
    return at_end ? s.compare(s.size() - x.size(), x.size(), x) == 0 : s.compare(0, x.size(), x) == 0;
  };
  if (prefix.is_sequence()) {
    for (const Value& p : prefix.items())
      if (one(p)) return true;
    return false;
  }
  return one(prefix);
}

std::string str_format(const std::string& fmt, const CallArgs& a) {
  // str.format with plain fields ({}, {0}, {name}); format specs are not supported.
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      size_t close = fmt.find('}', i);
      if (close == std::string::npos) throw TemplateError("Single '{' encountered in format string");
      std::string field = fmt.substr(i + 1, close - i - 1);
      if (field.find_first_of(":!") != std::string::npos) throw TemplateError("format specs are not supported in str.format");
      const Value* v = nullptr;
      if (field.empty()) {
        if (auto_index >= a.positional.size()) throw TemplateError("Replacement index " + std::to_string(auto_index) + " out of range");
        v = &a.positional[auto_index++];
      } else if (std::all_of(field.begin(), field.end(), ::isdigit)) {
        size_t idx = std::stoul(field);
        if (idx >= a.positional.size()) throw TemplateError("Replacement index " + field + " out of range");
        v = &a.positional[idx];
      } else {
        for (const auto& [k, val] : a.keyword)
          if (k == field) v = &val;
        if (!v) throw TemplateError("'" + field + "'");
      }
      out += v->str();
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

Value string_method(const std::string& s, const std::string& name) {
  auto bind = [&](auto fn) {
    return Value::function("str." + name, [s, name, fn](CallArgs& call) -> Value {
      Args a(call, name);
      return fn(a);
    });
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return bind([s, name](Args& a) {
      Value chars = a.get(0, "chars");
      std::string c = chars.is_string() ? chars.as_string() : "";
      return Value(py_strip(s, chars.is_string() ? &c : nullptr, name != "rstrip", name != "lstrip"));
    });
  if (name == "split" || name == "rsplit")
    return bind([s, name](Args& a) {
      Value sep = a.get(0, "sep");
      std::string sp = sep.is_string() ? sep.as_string() : "";
      int64_t maxsplit = a.integer(1, "maxsplit", -1);
      if (name == "rsplit" && maxsplit >= 0 && sep.is_string()) {  // split from the right
        std::vector<std::string> all = py_split(s, &sp, -1);
        if (static_cast<int64_t>(all.size()) - 1 > maxsplit) {
          size_t keep = all.size() - static_cast<size_t>(maxsplit);
          std::string head = all[0];
          for (size_t i = 1; i < keep; ++i) head += sp + all[i];
          std::vector<std::string> out = {head};
          out.insert(out.end(), all.begin() + static_cast<long>(keep), all.end());
          return string_list(out);
        }
        return string_list(all);
      }
      return string_list(py_split(s, sep.is_string() ? &sp : nullptr, maxsplit));
    });
  if (name == "splitlines") return bind([s](Args&) { return string_list(py_splitlines(s)); });
  if (name == "startswith" || name == "endswith")
    return bind([s, name](Args& a) { return Value(matches_prefix(s, a.get(0, "prefix"), name == "endswith")); });
  if (name == "upper") return bind([s](Args&) { return Value(py_upper(s)); });
  if (name == "lower") return bind([s](Args&) { return Value(py_lower(s)); });
  if (name == "title") return bind([s](Args&) { return Value(py_title(s)); });
  if (name == "capitalize") return bind([s](Args&) { return Value(py_capitalize(s)); });
  if (name == "replace")
    return bind([s](Args& a) {
      return Value(py_replace(s, a.str(0, "old", ""), a.str(1, "new", ""), a.integer(2, "count", -1)));
    });
  if (name == "find" || name == "rfind" || name == "index" || name == "count")
    return bind([s, name](Args& a) -> Value {
      std::string sub = a.str(0, "sub", "");
      if (name == "count") {
        if (sub.empty()) return Value(static_cast<int64_t>(code_points(s).size() + 1));
        int64_t n = 0;
        for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
        return Value(n);
      }
      size_t p = name == "rfind" ? s.rfind(sub) : s.find(sub);
      if (p == std::string::npos) {
        if (name == "index") throw TemplateError("substring not found");
        return Value(int64_t{-1});
      }
      return Value(static_cast<int64_t>(code_points(s.substr(0, p)).size()));
    });
  if (name == "join")
    return bind([s](Args& a) {
      std::string out;
      bool first = true;
      for (const Value& v : iterate(a.get(0, "iterable"))) {
        if (!v.is_string()) throw TemplateError("sequence item: expected str instance, " + v.type_name() + " found");
        if (!first) out += s;
        out += v.as_string();
        first = false;
      }
      return Value(out);
    });
  if (name == "format") return bind([s](Args& a) { return Value(str_format(s, a.raw())); });
  if (name == "removeprefix" || name == "removesuffix")
    return bind([s, name](Args& a) {
      std::string x = a.str(0, "prefix", "");
      if (!x.empty() && x.size() <= s.size()) {
        if (name == "removeprefix" && s.compare(0, x.size(), x) == 0) return Value(s.substr(x.size()));
        if (name == "removesuffix" && s.compare(s.size() - x.size(), x.size(), x) == 0)
          return Value(s.substr(0, s.size() - x.size()));
      }
      return Value(s);
    });
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "isupper" ||
      name == "islower")
    return bind([s, name](Args&) {
      std::vector<uint32_t> cps = code_points(s);
      if (cps.empty()) return Value(false);
      if (name == "isupper" || name == "islower") {
        bool any = false;
        for (uint32_t cp : cps) {
          CodepointFlags f = codepoint_flags(cp);
          if (!f.letter) continue;
          any = true;
          bool up = to_lower(cp) != cp;
          if (up != (name == "isupper")) return Value(false);
        }
        return Value(any);
      }
      for (uint32_t cp : cps) {
        CodepointFlags f = codepoint_flags(cp);
        bool ok = name == "isdigit" ? (cp >= '0' && cp <= '9') || f.number
                  : name == "isalpha" ? f.letter
                  : name == "isalnum" ? f.letter || f.number
                                      : is_python_space(cp);
        if (!ok) return Value(false);
      }
      return Value(true);
    });
  return Value::undefined("'str object' has no attribute '" + name + "'");
}

Value dict_method(const Value& d, const std::string& name) {
  if (name == "items")
    return Value::function("dict.items", [d](CallArgs&) {
      List out;
      for (const auto& [k, v] : d.entries().items) out.push_back(Value::tuple({Value(k), v}));
      return Value::list(std::move(out));
    });
  if (name == "keys")
    return Value::function("dict.keys", [d](CallArgs&) {
      List out;
      for (const auto& [k, v] : d.entries().items) out.emplace_back(k);
      return Value::list(std::move(out));
    });
  if (name == "values")
    return Value::function("dict.values", [d](CallArgs&) {
      List out;
      for (const auto& [k, v] : d.entries().items) out.push_back(v);
      return Value::list(std::move(out));
    });
  if (name == "get")
    return Value::function("dict.get", [d](CallArgs& call) {
      Args a(call, "get");
      Value key = a.get(0, "key");
      if (key.is_string())
        if (const Value* v = d.entries().find(key.as_string())) return *v;
      return a.get(1, "default", Value::none());
    });
  return Value();
}

int64_t normalize_index(int64_t i, int64_t n) { return i < 0 ? i + n : i; }

}  // namespace

Value get_attribute(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) throw TemplateError(obj.undefined_hint().empty() ? "value is undefined" : obj.undefined_hint());
  // The sandbox answers unsafe attributes with an Undefined that fails (with this message) when used.
  if ((!name.empty() && name[0] == '_') ||
      ((obj.is_sequence() || obj.kind() == Value::Kind::Dict) && mutating_methods().count(name)))
    return Value::undefined("access to attribute '" + name + "' of '" + obj.type_name() + "' object is unsafe.");
  switch (obj.kind()) {
    case Value::Kind::String: return string_method(obj.as_string(), name);
    case Value::Kind::Dict: {
      Value method = dict_method(obj, name);
      if (!method.is_undefined()) return method;
      if (const Value* v = obj.entries().find(name)) return *v;
      return missing_attribute(obj, name);
    }
    case Value::Kind::Namespace:
      if (const Value* v = obj.entries().find(name)) return *v;
      return missing_attribute(obj, name);
    case Value::Kind::List:
    case Value::Kind::Tuple:
      if (name == "index" || name == "count")
        return Value::function(obj.type_name() + "." + name, [obj, name](CallArgs& call) -> Value {
          Value x = Args(call, name).get(0, "value");
          int64_t n = 0;
          for (size_t i = 0; i < obj.items().size(); ++i)
            if (equal(obj.items()[i], x)) {
              if (name == "index") return Value(static_cast<int64_t>(i));
              ++n;
            }
          if (name == "index") throw TemplateError(x.repr() + " is not in list");
          return Value(n);
        });
      return missing_attribute(obj, name);
    default: return missing_attribute(obj, name);
  }
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) throw TemplateError(obj.undefined_hint().empty() ? "value is undefined" : obj.undefined_hint());
  if (obj.is_dict() && key.is_string()) {
    if (const Value* v = obj.entries().find(key.as_string())) return *v;
    if (obj.kind() == Value::Kind::Dict) {
      Value method = dict_method(obj, key.as_string());
      if (!method.is_undefined()) return method;
    }
    return missing_attribute(obj, key.as_string());
  }
  if ((obj.is_sequence() || obj.is_string()) && key.is_number() && !key.is_float()) {
    if (obj.is_string()) {
      std::vector<uint32_t> cps = code_points(obj.as_string());
      int64_t i = normalize_index(key.as_int(), static_cast<int64_t>(cps.size()));
      if (i < 0 || i >= static_cast<int64_t>(cps.size()))
        return Value::undefined("str object has no element " + key.repr());
      return Value(from_code_points(&cps[static_cast<size_t>(i)], 1));
    }
    int64_t i = normalize_index(key.as_int(), static_cast<int64_t>(obj.items().size()));
    if (i < 0 || i >= static_cast<int64_t>(obj.items().size()))
      return Value::undefined(element_owner(obj) + " has no element " + key.repr());
    return obj.items()[static_cast<size_t>(i)];
  }
  if (key.is_string()) return get_attribute(obj, key.as_string());
  return Value::undefined(element_owner(obj) + " has no element " + key.repr());
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) throw TemplateError(obj.undefined_hint().empty() ? "value is undefined" : obj.undefined_hint());
  auto bound = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!v.is_number() || v.is_float()) throw TemplateError("slice indices must be integers or None");
    return v.as_int();
  };
  std::optional<int64_t> b = bound(start), e = bound(stop), s = bound(step);
  int64_t st = s.value_or(1);
  if (st == 0) throw TemplateError("slice step cannot be zero");
  std::vector<uint32_t> cps;
  int64_t n;
  if (obj.is_string()) {
    cps = code_points(obj.as_string());
    n = static_cast<int64_t>(cps.size());
  } else if (obj.is_sequence()) {
    n = static_cast<int64_t>(obj.items().size());
  } else {
    throw TemplateError("'" + obj.type_name() + "' object is not subscriptable");
  }
  // Python's slice.indices()
  auto clamp = [&](std::optional<int64_t> v, int64_t def) {
    if (!v) return def;
    int64_t x = *v < 0 ? *v + n : *v;
    if (st > 0) return std::clamp<int64_t>(x, 0, n);
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  int64_t lo = clamp(b, st > 0 ? 0 : n - 1), hi = clamp(e, st > 0 ? n : -1);
  std::vector<size_t> picks;
  for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) picks.push_back(static_cast<size_t>(i));
  if (obj.is_string()) {
    std::string out;
    for (size_t i : picks) utf8_append(out, cps[i]);
    return Value(out);
  }
  List out;
  for (size_t i : picks) out.push_back(obj.items()[i]);
  return obj.kind() == Value::Kind::Tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

List iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return {};
    case Value::Kind::List:
    case Value::Kind::Tuple: return v.items();
    case Value::Kind::Dict: {
      List keys;
      for (const auto& [k, x] : v.entries().items) keys.emplace_back(k);
      return keys;
    }
    case Value::Kind::String: {
      List chars;
      for (uint32_t cp : code_points(v.as_string())) chars.emplace_back(utf8_encode(cp));
      return chars;
    }
    default: throw TemplateError("'" + v.type_name() + "' object is not iterable");
  }
}

std::string percent_format(const std::string& format, const Value& args) {
  List values = args.kind() == Value::Kind::Tuple ? args.items() : List{args};
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) throw TemplateError("incomplete format");
    char conv = format[i];
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (next >= values.size()) throw TemplateError("not enough arguments for format string");
    const Value& v = values[next++];
    switch (conv) {
      case 's': out += v.str(); break;
      case 'r': out += v.repr(); break;
      case 'd':
      case 'i':
        if (!v.is_number()) throw TemplateError("%" + std::string(1, conv) + " format: a real number is required, not " + v.type_name());
        out += std::to_string(v.is_float() ? static_cast<int64_t>(v.as_double()) : v.as_int());
        break;
      case 'f': {
        if (!v.is_number()) throw TemplateError("must be real number, not " + v.type_name());
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.6f", v.as_double());
        out += buf;
        break;
      }
      default: throw TemplateError(std::string("unsupported format character '") + conv + "'");
    }
  }
  if (next < values.size()) throw TemplateError("not all arguments converted during string formatting");
  return out;
}

void add_globals(Dict& globals) {
  globals.set("range", Value::function("range", [](CallArgs& call) {
    if (call.positional.empty() || call.positional.size() > 3) throw TemplateError("range expected 1 to 3 arguments");
    for (const Value& v : call.positional)
      if (!v.is_number() || v.is_float()) throw TemplateError("'" + v.type_name() + "' object cannot be interpreted as an integer");
    int64_t start = 0, stop, step = 1;
    if (call.positional.size() == 1) {
      stop = call.positional[0].as_int();
    } else {
      start = call.positional[0].as_int();
      stop = call.positional[1].as_int();
      if (call.positional.size() == 3) step = call.positional[2].as_int();
    }
    if (step == 0) throw TemplateError("range() arg 3 must not be zero");
    List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (out.size() >= 100000)  // jinja2's sandbox MAX_RANGE
        throw TemplateError("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
      out.emplace_back(i);
    }
    return Value::list(std::move(out));
  }));
  globals.set("dict", Value::function("dict", [](CallArgs& call) {
    Dict d;
    if (!call.positional.empty()) {
      if (!call.positional[0].is_dict()) throw TemplateError("dict() positional argument must be a mapping");
      d = call.positional[0].entries();
    }
    for (const auto& [k, v] : call.keyword) d.set(k, v);
    return Value::dict(std::move(d));
  }));
  globals.set("namespace", Value::function("namespace", [](CallArgs& call) {
    Dict d;
    for (const Value& p : call.positional) {
      if (!p.is_dict()) throw TemplateError("namespace() positional argument must be a mapping");
      for (const auto& [k, v] : p.entries().items) d.set(k, v);
    }
    for (const auto& [k, v] : call.keyword) d.set(k, v);
    return Value::namespace_(std::move(d));
  }));
  globals.set("raise_exception", Value::function("raise_exception", [](CallArgs& call) -> Value {
    throw TemplateError(call.positional.empty() ? "" : call.positional[0].str());
  }));
  globals.set("strftime_now", Value::function("strftime_now", [](CallArgs& call) {
    std::string format = Args(call, "strftime_now").str(0, "format", "");
    std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[512];
    size_t n = std::strftime(buf, sizeof buf, format.c_str(), &local);
    return Value(std::string(buf, n));
  }));
}

}  // namespace chassis::jinja
