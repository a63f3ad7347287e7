// The values a Jinja template computes with, modelled on the Python objects jinja2 sees when
// transformers renders a chat template: None, bool, int, float, str, list, tuple, dict (insertion
// ordered), callables, and jinja2's Undefined. Printing, repr, equality, ordering and truthiness follow
// Python so that rendered prompts are byte-identical to Hugging Face's.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace chassis::jinja {

// A template error: the message jinja2 would give, and the template line (0 when unknown).
class TemplateError : public std::runtime_error {
 public:
  TemplateError(const std::string& message, int line = 0) : std::runtime_error(message), line(line) {}
  int line;
};

class Value;
using List = std::vector<Value>;

// Bounds on any single value a template builds (a hostile template doubling a string or list in a
// loop must get an error, not exhaust memory). A 1M-token prompt is ~4 MiB of text.
constexpr size_t kMaxStringBytes = 32u << 20;
constexpr size_t kMaxListItems = 1u << 20;

// Insertion-ordered string-keyed map (Python dict semantics for the keys chat templates use).
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value value);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};
class Interpreter;
using NativeFunction = std::function<Value(CallArgs&)>;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Tuple, Dict, Namespace, Function };

  Value() = default;  // Undefined
  static Value undefined(std::string hint = "");
  static Value none();
  Value(bool b);
  Value(int64_t i);
  Value(int i) : Value(int64_t{i}) {}
  Value(double d);
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}
  static Value list(List items = {});
  static Value tuple(List items);
  static Value dict(Dict d = {});
  static Value namespace_(Dict d = {});
  static Value function(std::string name, NativeFunction fn);
  // markupsafe.Markup: a string marked safe (|safe, |escape). `+` escapes the plain side.
  static Value markup(std::string s);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_markup() const { return kind_ == Kind::String && markup_; }
  bool is_sequence() const { return kind_ == Kind::List || kind_ == Kind::Tuple; }
  bool is_dict() const { return kind_ == Kind::Dict || kind_ == Kind::Namespace; }
  bool is_function() const { return kind_ == Kind::Function; }

  bool as_bool() const { return boolean_; }
  int64_t as_int() const;     // bool and int (throws otherwise)
  double as_double() const;   // any number
  const std::string& as_string() const { return text(); }
  // For Undefined: what was undefined ("'x' is undefined"), used in error messages.
  const std::string& undefined_hint() const { return text(); }
  const List& items() const { return *list_; }
  List& mutable_items() { return *list_; }
  const Dict& entries() const { return *dict_; }
  Dict& mutable_entries() { return *dict_; }
  Value call(CallArgs& args) const;
  const std::string& function_name() const { return text(); }

  bool truthy() const;
  // Python str(): what {{ value }} prints (Undefined prints nothing).
  std::string str() const;
  // Python repr(): how a value prints inside a list or dict.
  std::string repr() const;
  // Python's type name as jinja2's messages give it ("str", "dict", "NoneType", ...).
  std::string type_name() const;
  // Python len() (code points for strings); throws for values without a length.
  size_t length() const;

 private:
  Kind kind_ = Kind::Undefined;
  bool boolean_ = false;
  bool markup_ = false;
  int64_t integer_ = 0;
  double number_ = 0;
  const std::string& text() const;
  // String; Undefined hint; Function name. Shared: copying a value never copies its text.
  std::shared_ptr<const std::string> string_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<NativeFunction> function_;
};

// Python ==, and the ordering of <, <=, >, >= (throws TemplateError for unorderable types).
bool equal(const Value& a, const Value& b);
int compare(const Value& a, const Value& b);

// Python float repr ("1.0", "1e-05", "0.1", "inf").
std::string float_repr(double d);

struct JsonOptions {
  int indent = -1;               // -1: None (one line)
  std::string indent_string;     // used when set (json.dumps accepts a string indent)
  std::string item_separator;    // empty: default (", " or "," with indent)
  std::string key_separator;     // empty: default ": "
  bool sort_keys = false;
  bool ensure_ascii = false;
};
// Python json.dumps as transformers' tojson filter calls it.
std::string to_json(const Value& v, const JsonOptions& options = {});

// Unicode code points of a UTF-8 string and back (strings index and slice by code point, as Python).
std::vector<uint32_t> code_points(const std::string& s);
std::string from_code_points(const uint32_t* cps, size_t n);
bool is_python_space(uint32_t cp);

}  // namespace chassis::jinja
