// The syntax tree of a parsed Jinja template: expressions and statements, each with its source line.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace chassis::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
using KeywordArgs = std::vector<std::pair<std::string, ExprPtr>>;

struct Expr {
  enum class Kind {
    Literal,    // value
    Name,       // name
    ListLit,    // args = items
    TupleLit,   // args = items
    DictLit,    // args = key0, value0, key1, value1, ...
    GetAttr,    // args[0].name
    GetItem,    // args[0][args[1]]
    Slice,      // args[0][args[1]:args[2]:args[3]] (null = omitted)
    Call,       // args[0](args[1..], kwargs)
    Filter,     // args[0] | name(args[1..], kwargs)
    Test,       // args[0] is [not] name(args[1..])
    Unary,      // name ("-", "+", "not") args[0]
    Binary,     // args[0] name args[1]; name in + - * / // % ** ~ and or
    Compare,    // args[0] ops[0] args[1] ops[1] args[2] ...
    Conditional,  // args[1] if args[0] else args[2] (args[2] may be null)
  };
  Kind kind;
  int line = 0;
  Value value;
  std::string name;
  std::vector<ExprPtr> args;
  KeywordArgs kwargs;
  std::vector<std::string> ops;
  bool negated = false;

  Expr() = default;
  Expr(const Expr&) = delete;
  Expr& operator=(const Expr&) = delete;
  // Iterative, so that destroying a very deep (hostile) tree cannot overflow the stack.
  ~Expr();
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind {
    Text,        // text
    Output,      // {{ expr }}
    If,          // branches (condition, body) ..., else_body
    For,         // targets in expr [if condition]: body, else_body
    Set,         // targets = expr, or attribute (namespace) target: targets[0].attribute = expr
    SetBlock,    // targets[0] = rendered body, through filters (expr chain on a null operand)
    Macro,       // name(params) body
    CallBlock,   // {% call(params) expr %} body
    FilterBlock, // body through filters
    Break,
    Continue,
    Generation,  // transformers' {% generation %} marker: renders its body
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  std::vector<std::string> targets;
  std::string attribute;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro parameters with optional defaults
};

}  // namespace chassis::jinja
