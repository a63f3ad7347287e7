// Tree-walking renderer for parsed Jinja templates: scopes as jinja2 has them (a for-loop body gets a
// fresh scope each iteration; if-blocks share their parent's), macros with caller/varargs/kwargs,
// loop controls, and Python's operator semantics.
#include "tokenizer/jinja/template.h"

#include <cmath>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"
#include "tokenizer/jinja/text.h"

namespace chassis::jinja {

struct Program {
  Body body;
};

namespace {

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get()) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};
using ScopePtr = std::shared_ptr<Scope>;

enum class Flow { Normal, Break, Continue };

[[noreturn]] void undefined_error(const Value& v) {
  throw TemplateError(v.undefined_hint().empty() ? "value is undefined" : v.undefined_hint());
}

[[noreturn]] void unsupported(const char* op, const Value& a, const Value& b) {
  throw TemplateError(std::string("unsupported operand type(s) for ") + op + ": '" + a.type_name() + "' and '" +
                      b.type_name() + "'");
}

// Integer + - * as Python computes them, except that results beyond int64 are an error.
template <typename Op>
int64_t checked(Op op, int64_t a, int64_t b) {
  int64_t r;
  if (op(a, b, &r)) throw TemplateError("integer overflow in template arithmetic");
  return r;
}
bool add_overflow(int64_t a, int64_t b, int64_t* r) { return __builtin_add_overflow(a, b, r); }
bool sub_overflow(int64_t a, int64_t b, int64_t* r) { return __builtin_sub_overflow(a, b, r); }
bool mul_overflow(int64_t a, int64_t b, int64_t* r) { return __builtin_mul_overflow(a, b, r); }

// Names a macro body reads, to decide (as jinja2 does at compile time) whether it takes varargs/kwargs.
void collect_names(const Expr* e, std::unordered_set<std::string>& out) {
  if (!e) return;
  if (e->kind == Expr::Kind::Name) out.insert(e->name);
  for (const auto& a : e->args) collect_names(a.get(), out);
  for (const auto& [k, v] : e->kwargs) collect_names(v.get(), out);
}
void collect_names(const Body& body, std::unordered_set<std::string>& out) {
  for (const auto& s : body) {
    collect_names(s->expr.get(), out);
    collect_names(s->condition.get(), out);
    for (const auto& [c, b] : s->branches) {
      collect_names(c.get(), out);
      collect_names(b, out);
    }
    collect_names(s->body, out);
    collect_names(s->else_body, out);
    for (const auto& [n, d] : s->params) collect_names(d.get(), out);
  }
}

class Renderer {
 public:
  Renderer(const Dict& variables, const RenderLimits& limits) : limits_(limits) {
    globals_ = std::make_shared<Scope>();
    Dict builtins;
    add_globals(builtins);
    for (auto& [k, v] : builtins.items) globals_->vars[k] = v;
    for (const auto& [k, v] : variables.items) globals_->vars[k] = v;
  }

  // A macro holds its defining scope, which holds the macro; a namespace can be given itself as an
  // attribute ({% set ns.me = ns %}, found by the fuzzer). Break those cycles when done: a namespace
  // is the only container a template can mutate, so every cycle of values passes through one that
  // was assigned into.
  ~Renderer() {
    for (const ScopePtr& s : closures_) s->vars.clear();
    for (Value& ns : assigned_namespaces_) ns.mutable_entries().items.clear();
  }

  std::string render(const Body& body) {
    std::string out;
    out_ = &out;
    exec_body(body, globals_);
    return out;
  }

 private:
  void step() {
    if (++steps_ > limits_.max_steps) throw TemplateError("template exceeded the render step limit (endless loop?)");
  }

  void emit(const std::string& s) {
    if (out_->size() + s.size() > limits_.max_output_bytes)
      throw TemplateError("template output exceeds " + std::to_string(limits_.max_output_bytes) + " bytes");
    *out_ += s;
  }

  std::string capture(const std::function<void()>& fn) {
    std::string buffer;
    std::string* saved = out_;
    out_ = &buffer;
    try {
      fn();
    } catch (...) {
      out_ = saved;
      throw;
    }
    out_ = saved;
    return buffer;
  }

  Flow exec_body(const Body& body, const ScopePtr& scope) {
    for (const auto& s : body) {
      Flow f = exec(*s, scope);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec(const Stmt& s, const ScopePtr& scope) {
    step();
    try {
      return exec_inner(s, scope);
    } catch (TemplateError& e) {
      if (e.line == 0) e.line = s.line;
      throw;
    }
  }

  void assign(const std::vector<std::string>& targets, const Value& v, Scope& scope) {
    if (targets.size() == 1) {
      scope.vars[targets[0]] = v;
      return;
    }
    List items = iterate(v);
    if (items.size() != targets.size())
      throw TemplateError(items.size() > targets.size()
                              ? "too many values to unpack (expected " + std::to_string(targets.size()) + ")"
                              : "not enough values to unpack (expected " + std::to_string(targets.size()) +
                                    ", got " + std::to_string(items.size()) + ")");
    for (size_t i = 0; i < targets.size(); ++i) scope.vars[targets[i]] = items[i];
  }

  Flow exec_inner(const Stmt& s, const ScopePtr& scope) {
    switch (s.kind) {
      case Stmt::Kind::Text: emit(s.text); return Flow::Normal;
      case Stmt::Kind::Output: emit(eval(*s.expr, scope).str()); return Flow::Normal;
      case Stmt::Kind::If:
        for (const auto& [cond, body] : s.branches)
          if (eval(*cond, scope).truthy()) return exec_body(body, scope);
        return exec_body(s.else_body, scope);
      case Stmt::Kind::For: return exec_for(s, scope);
      case Stmt::Kind::Set: {
        Value v = eval(*s.expr, scope);
        if (!s.attribute.empty()) {
          const Value* found = scope->find(s.targets[0]);
          if (!found || found->kind() != Value::Kind::Namespace)
            throw TemplateError("cannot assign attribute on non-namespace object");
          Value ns = *found;  // shares the namespace's entries
          ns.mutable_entries().set(s.attribute, v);
          if (assigned_.insert(&ns.mutable_entries()).second) assigned_namespaces_.push_back(ns);
        } else {
          assign(s.targets, v, *scope);
        }
        return Flow::Normal;
      }
      case Stmt::Kind::SetBlock: {
        Value v(capture([&] { exec_body(s.body, scope); }));
        if (s.expr) v = eval_filters(*s.expr, v, scope);
        scope->vars[s.targets[0]] = v;
        return Flow::Normal;
      }
      case Stmt::Kind::Macro: scope->vars[s.text] = make_macro(s, scope, s.text); return Flow::Normal;
      case Stmt::Kind::CallBlock: {
        // {% call(params) f(args) %}body{% endcall %}: f gets `caller`, a macro rendering body.
        Value caller = make_macro(s, scope, "caller");
        const Expr& call = *s.expr;
        Value fn = eval(*call.args[0], scope);
        CallArgs args = eval_args(call, scope);
        args.keyword.emplace_back("caller", caller);
        emit(fn.call(args).str());
        return Flow::Normal;
      }
      case Stmt::Kind::FilterBlock: {
        Value v(capture([&] { exec_body(s.body, scope); }));
        emit(eval_filters(*s.expr, v, scope).str());
        return Flow::Normal;
      }
      case Stmt::Kind::Break: return Flow::Break;
      case Stmt::Kind::Continue: return Flow::Continue;
      case Stmt::Kind::Generation: return exec_body(s.body, scope);
    }
    return Flow::Normal;
  }

  Flow exec_for(const Stmt& s, const ScopePtr& scope) {
    Value iterable = eval(*s.expr, scope);
    if (!(iterable.is_undefined() || iterable.is_sequence() || iterable.is_dict() || iterable.is_string()))
      throw TemplateError("'" + iterable.type_name() + "' object is not iterable");
    List all = iterate(iterable);
    List items;
    if (s.condition) {
      for (const Value& v : all) {
        step();
        auto probe = std::make_shared<Scope>();
        probe->parent = scope;
        assign(s.targets, v, *probe);
        if (eval(*s.condition, probe).truthy()) items.push_back(v);
      }
    } else {
      items = std::move(all);
    }
    if (items.empty()) return exec_body(s.else_body, scope);
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      step();
      auto iteration = std::make_shared<Scope>();
      iteration->parent = scope;
      assign(s.targets, items[i], *iteration);
      Dict loop;
      loop.set("index", Value(i + 1));
      loop.set("index0", Value(i));
      loop.set("revindex", Value(n - i));
      loop.set("revindex0", Value(n - i - 1));
      loop.set("first", Value(i == 0));
      loop.set("last", Value(i == n - 1));
      loop.set("length", Value(n));
      loop.set("depth", Value(int64_t{1}));
      loop.set("depth0", Value(int64_t{0}));
      loop.set("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
      loop.set("nextitem", i + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
      loop.set("cycle", Value::function("cycle", [i](CallArgs& a) -> Value {
                 if (a.positional.empty()) throw TemplateError("no items for cycling given");
                 return a.positional[static_cast<size_t>(i) % a.positional.size()];
               }));
      iteration->vars["loop"] = Value::dict(std::move(loop));
      Flow f = exec_body(s.body, iteration);
      if (f == Flow::Break) break;
    }
    return Flow::Normal;
  }

  Value make_macro(const Stmt& s, const ScopePtr& closure, const std::string& name) {
    std::unordered_set<std::string> used;
    collect_names(s.body, used);
    bool takes_varargs = used.count("varargs") > 0, takes_kwargs = used.count("kwargs") > 0;
    const Stmt* def = &s;
    closures_.push_back(closure);
    return Value::function(name, [this, def, closure, name, takes_varargs, takes_kwargs](CallArgs& a) -> Value {
      if (++depth_ > limits_.max_call_depth) {
        --depth_;
        throw TemplateError("maximum macro recursion depth exceeded");
      }
      struct DepthGuard {
        int& d;
        ~DepthGuard() { --d; }
      } guard{depth_};
      auto frame = std::make_shared<Scope>();
      frame->parent = closure;
      const auto& params = def->params;
      if (a.positional.size() > params.size() && !takes_varargs)
        throw TemplateError("macro '" + name + "' takes not more than " + std::to_string(params.size()) +
                            " argument(s)");
      List varargs;
      for (size_t i = 0; i < a.positional.size(); ++i) {
        if (i < params.size()) frame->vars[params[i].first] = a.positional[i];
        else varargs.push_back(a.positional[i]);
      }
      Dict kwargs;
      Value caller;
      for (auto& [k, v] : a.keyword) {
        if (k == "caller") {
          caller = v;
          continue;
        }
        bool is_param = false;
        for (const auto& p : params) is_param |= p.first == k;
        if (is_param) {
          frame->vars[k] = v;
        } else if (takes_kwargs) {
          kwargs.set(k, v);
        } else {
          throw TemplateError("macro '" + name + "' takes no keyword argument '" + k + "'");
        }
      }
      for (const auto& [pname, pdefault] : params) {
        if (frame->vars.count(pname)) continue;
        frame->vars[pname] = pdefault ? eval(*pdefault, frame) : Value::undefined("'" + pname + "' is undefined");
      }
      frame->vars["varargs"] = Value::tuple(std::move(varargs));
      frame->vars["kwargs"] = Value::dict(std::move(kwargs));
      if (!caller.is_undefined()) frame->vars["caller"] = caller;
      return Value(capture([&] { exec_body(def->body, frame); }));
    });
  }

  CallArgs eval_args(const Expr& e, const ScopePtr& scope, size_t first = 1) {
    CallArgs args;
    for (size_t i = first; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i], scope));
    for (const auto& [k, v] : e.kwargs) args.keyword.emplace_back(k, eval(*v, scope));
    return args;
  }

  // Applies a filter chain whose innermost operand is null (a block's rendered text) to `value`.
  Value eval_filters(const Expr& chain, const Value& value, const ScopePtr& scope) {
    Value operand = chain.args[0] ? eval_filters(*chain.args[0], value, scope) : value;
    CallArgs args = eval_args(chain, scope);
    return apply_filter(chain.name, operand, args);
  }

  static void check_size(const Value& v) {
    if (v.is_string() && v.as_string().size() > kMaxStringBytes)
      throw TemplateError("template built a string larger than " + std::to_string(kMaxStringBytes >> 20) + " MiB");
    if (v.is_sequence() && v.items().size() > kMaxListItems)
      throw TemplateError("template built a list longer than " + std::to_string(kMaxListItems) + " items");
  }

  Value eval(const Expr& e, const ScopePtr& scope) {
    try {
      Value v = eval_inner(e, scope);
      if (e.kind == Expr::Kind::Binary || e.kind == Expr::Kind::Filter || e.kind == Expr::Kind::Call) check_size(v);
      return v;
    } catch (TemplateError& err) {
      if (err.line == 0) err.line = e.line;
      throw;
    }
  }

  Value eval_inner(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
      case Expr::Kind::Literal: return e.value;
      case Expr::Kind::Name: {
        if (const Value* v = scope->find(e.name)) return *v;
        return Value::undefined("'" + e.name + "' is undefined");
      }
      case Expr::Kind::ListLit:
      case Expr::Kind::TupleLit: {
        List items;
        for (const auto& a : e.args) items.push_back(eval(*a, scope));
        return e.kind == Expr::Kind::ListLit ? Value::list(std::move(items)) : Value::tuple(std::move(items));
      }
      case Expr::Kind::DictLit: {
        Dict d;
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          Value k = eval(*e.args[i], scope);
          if (!k.is_string()) throw TemplateError("only string keys are supported in dict literals");
          d.set(k.as_string(), eval(*e.args[i + 1], scope));
        }
        return Value::dict(std::move(d));
      }
      case Expr::Kind::GetAttr: return get_attribute(eval(*e.args[0], scope), e.name);
      case Expr::Kind::GetItem: return get_item(eval(*e.args[0], scope), eval(*e.args[1], scope));
      case Expr::Kind::Slice: {
        Value obj = eval(*e.args[0], scope);
        Value parts[3];
        for (int i = 0; i < 3; ++i) parts[i] = e.args[i + 1] ? eval(*e.args[i + 1], scope) : Value::none();
        return slice(obj, parts[0], parts[1], parts[2]);
      }
      case Expr::Kind::Call: {
        Value fn = eval(*e.args[0], scope);
        CallArgs args = eval_args(e, scope);
        return fn.call(args);
      }
      case Expr::Kind::Filter: {
        Value operand = eval(*e.args[0], scope);
        CallArgs args = eval_args(e, scope);
        return apply_filter(e.name, operand, args);
      }
      case Expr::Kind::Test: {
        Value operand = eval(*e.args[0], scope);
        CallArgs args = eval_args(e, scope);
        return Value(apply_test(e.name, operand, args) != e.negated);
      }
      case Expr::Kind::Unary: {
        Value v = eval(*e.args[0], scope);
        if (e.name == "not") return Value(!v.truthy());
        if (v.is_undefined()) undefined_error(v);
        if (v.is_float()) return Value(e.name == "-" ? -v.as_double() : v.as_double());
        if (v.is_number()) return Value(e.name == "-" ? -v.as_int() : v.as_int());
        throw TemplateError("bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
      }
      case Expr::Kind::Binary: {
        if (e.name == "and") {
          Value l = eval(*e.args[0], scope);
          return l.truthy() ? eval(*e.args[1], scope) : l;
        }
        if (e.name == "or") {
          Value l = eval(*e.args[0], scope);
          return l.truthy() ? l : eval(*e.args[1], scope);
        }
        return binary(e.name, eval(*e.args[0], scope), eval(*e.args[1], scope));
      }
      case Expr::Kind::Compare: {
        Value left = eval(*e.args[0], scope);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.args[i + 1], scope);
          if (!compare_op(e.ops[i], left, right)) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case Expr::Kind::Conditional: {
        if (eval(*e.args[0], scope).truthy()) return eval(*e.args[1], scope);
        if (e.args[2]) return eval(*e.args[2], scope);
        return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                                " evaluated to false and no else section was defined.");
      }
    }
    return Value();
  }

  static bool contains(const Value& container, const Value& item) {
    if (container.is_string()) {
      if (!item.is_string())
        throw TemplateError("'in <string>' requires string as left operand, not " + item.type_name());
      return container.as_string().find(item.as_string()) != std::string::npos;
    }
    if (container.is_sequence()) {
      for (const Value& v : container.items())
        if (equal(v, item)) return true;
      return false;
    }
    if (container.is_dict()) return item.is_string() && container.entries().find(item.as_string()) != nullptr;
    if (container.is_undefined()) return false;
    throw TemplateError("argument of type '" + container.type_name() + "' is not iterable");
  }

  static bool compare_op(const std::string& op, const Value& l, const Value& r) {
    if (op == "==") return equal(l, r);
    if (op == "!=") return !equal(l, r);
    if (op == "in") return contains(r, l);
    if (op == "not in") return !contains(r, l);
    if (l.is_undefined()) undefined_error(l);
    if (r.is_undefined()) undefined_error(r);
    int c;
    try {
      c = compare(l, r);
    } catch (const TemplateError&) {
      throw TemplateError("'" + op + "' not supported between instances of '" + l.type_name() + "' and '" +
                          r.type_name() + "'");
    }
    if (op == "<") return c < 0;
    if (op == "<=") return c <= 0;
    if (op == ">") return c > 0;
    return c >= 0;
  }

  Value repeat(const List& items, int64_t times, bool tuple) {
    List out;
    if (times > 0 && items.size() * static_cast<size_t>(times) > kMaxListItems)
      throw TemplateError("sequence repetition too large");
    for (int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
    return tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
  }

  Value binary(const std::string& op, const Value& a, const Value& b) {
    if (op == "~") {
      std::string left = a.str(), right = b.str();
      if (left.size() + right.size() > kMaxStringBytes) throw TemplateError("template built a string larger than 32 MiB");
      return Value(left + right);
    }
    if (a.is_undefined()) undefined_error(a);
    if (b.is_undefined()) undefined_error(b);
    const bool ints = a.is_number() && b.is_number() && !a.is_float() && !b.is_float();
    const bool nums = a.is_number() && b.is_number();
    if (op == "+") {
      if (ints) return Value(checked(add_overflow, a.as_int(), b.as_int()));
      if (nums) return Value(a.as_double() + b.as_double());
      if (a.is_markup() || b.is_markup()) {
        if (a.is_string() && b.is_string()) {
          auto safe = [](const Value& v) { return v.is_markup() ? v.as_string() : html_escape(v.as_string()); };
          return Value::markup(safe(a) + safe(b));
        }
      } else if (a.is_string() && b.is_string()) {
        return Value(a.as_string() + b.as_string());
      }
      if (a.kind() == b.kind() && a.is_sequence()) {
        List out = a.items();
        out.insert(out.end(), b.items().begin(), b.items().end());
        return a.kind() == Value::Kind::Tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
      }
      if (a.is_string())
        throw TemplateError("can only concatenate str (not \"" + b.type_name() + "\") to str");
      if (a.is_sequence())
        throw TemplateError("can only concatenate " + a.type_name() + " (not \"" + b.type_name() + "\") to " +
                            a.type_name());
      unsupported("+", a, b);
    }
    if (op == "-") {
      if (ints) return Value(checked(sub_overflow, a.as_int(), b.as_int()));
      if (nums) return Value(a.as_double() - b.as_double());
      unsupported("-", a, b);
    }
    if (op == "*") {
      if (ints) return Value(checked(mul_overflow, a.as_int(), b.as_int()));
      if (nums) return Value(a.as_double() * b.as_double());
      const Value* seq = a.is_number() ? &b : &a;
      const Value* count = a.is_number() ? &a : &b;
      if (count->is_number() && !count->is_float()) {
        int64_t times = count->as_int();
        if (seq->is_string()) {
          if (times > 0 && seq->as_string().size() * static_cast<size_t>(times) > kMaxStringBytes)
            throw TemplateError("string repetition too large");
          std::string out;
          for (int64_t i = 0; i < times; ++i) out += seq->as_string();
          return Value(out);
        }
        if (seq->is_sequence()) return repeat(seq->items(), times, seq->kind() == Value::Kind::Tuple);
      }
      throw TemplateError("can't multiply sequence by non-int of type '" + count->type_name() + "'");
    }
    if (op == "/") {
      if (!nums) unsupported("/", a, b);
      if (b.as_double() == 0) throw TemplateError("division by zero");
      return Value(a.as_double() / b.as_double());
    }
    if (op == "//") {
      if (!nums) unsupported("//", a, b);
      if (ints) {
        if (b.as_int() == 0) throw TemplateError("integer division or modulo by zero");
        int64_t q = a.as_int() / b.as_int();
        if ((a.as_int() % b.as_int() != 0) && ((a.as_int() < 0) != (b.as_int() < 0))) --q;
        return Value(q);
      }
      if (b.as_double() == 0) throw TemplateError("float floor division by zero");
      return Value(std::floor(a.as_double() / b.as_double()));
    }
    if (op == "%") {
      if (a.is_string()) return Value(percent_format(a.as_string(), b));
      if (!nums) unsupported("%", a, b);
      if (ints) {
        if (b.as_int() == 0) throw TemplateError("integer division or modulo by zero");
        int64_t m = a.as_int() % b.as_int();
        if (m != 0 && ((m < 0) != (b.as_int() < 0))) m += b.as_int();
        return Value(m);
      }
      if (b.as_double() == 0) throw TemplateError("float modulo");
      double m = std::fmod(a.as_double(), b.as_double());
      if (m != 0 && ((m < 0) != (b.as_double() < 0))) m += b.as_double();
      return Value(m);
    }
    if (op == "**") {
      if (!nums) unsupported("** or pow()", a, b);
      if (ints && b.as_int() >= 0) {
        const int64_t base = a.as_int(), exponent = b.as_int();
        if (exponent == 0) return Value(int64_t{1});
        if (base == 0 || base == 1) return Value(base);
        if (base == -1) return Value(exponent % 2 ? int64_t{-1} : int64_t{1});
        int64_t result = 1;  // |base| >= 2 overflows int64 within 63 steps
        for (int64_t i = 0; i < exponent; ++i)
          if (__builtin_mul_overflow(result, base, &result))
            throw TemplateError("integer overflow in template arithmetic");
        return Value(result);
      }
      return Value(std::pow(a.as_double(), b.as_double()));
    }
    throw TemplateError("unknown operator " + op);
  }

  RenderLimits limits_;
  ScopePtr globals_;
  std::vector<ScopePtr> closures_;
  std::vector<Value> assigned_namespaces_;  // every namespace assigned into (see ~Renderer)
  std::unordered_set<const Dict*> assigned_;
  std::string* out_ = nullptr;
  size_t steps_ = 0;
  int depth_ = 0;
};

}  // namespace

Template Template::parse(std::string_view source) {
  auto program = std::make_shared<Program>();
  program->body = jinja::parse(tokenize(source));
  Template t;
  t.program_ = std::move(program);
  return t;
}

std::string Template::render(const Dict& variables, const RenderLimits& limits) const {
  Renderer renderer(variables, limits);
  return renderer.render(program_->body);
}

}  // namespace chassis::jinja
