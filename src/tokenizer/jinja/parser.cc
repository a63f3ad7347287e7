// Recursive descent over jinja2's grammar. Precedence, lowest first: `x if c else y`, or, and, not,
// comparisons (== != < <= > >= in, not in), + -, ~, * / // %, **, unary - +, then primaries with
// their postfixes (.attr, [item], (call)) and filters/tests (| f, is t).
#include "tokenizer/jinja/parser.h"

#include "tokenizer/jinja/builtins.h"

namespace chassis::jinja {
namespace {

using K = Token::Kind;

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : t_(tokens) {}

  Body parse_template() {
    Body body = parse_body({});
    return body;
  }

 private:
  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t n = 1) const { return t_[std::min(i_ + n, t_.size() - 1)]; }
  void next() {
    if (i_ + 1 < t_.size()) ++i_;
  }
  bool is_op(const char* op) const { return cur().kind == K::Operator && cur().text == op; }
  bool is_name(const char* name) const { return cur().kind == K::Name && cur().text == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case K::BlockEnd: return "end of statement block";
      case K::VariableEnd: return "end of print statement";
      case K::End: return "end of template";
      case K::String: return "string";
      case K::Integer: return "integer";
      case K::Float: return "float";
      case K::Name: return t.text;
      default: return t.text;
    }
  }

  [[noreturn]] void fail(const std::string& message) const { throw TemplateError(message, cur().line); }

  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected token '") + op + "', got '" + describe(cur()) + "'");
  }
  std::string expect_name() {
    if (cur().kind != K::Name) fail("expected token 'name', got '" + describe(cur()) + "'");
    std::string n = cur().text;
    next();
    return n;
  }
  void expect_block_end() {
    if (cur().kind != K::BlockEnd) fail("expected token 'end of statement block', got '" + describe(cur()) + "'");
    next();
  }

  ExprPtr make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // ---- statements ----

  // Parses until a block tag whose name is in `end_tags` (left unconsumed, at the tag name).
  Body parse_body(const std::vector<std::string>& end_tags, const char* innermost = nullptr) {
    Body body;
    while (true) {
      const Token& tok = cur();
      if (tok.kind == K::End) {
        if (end_tags.empty()) return body;
        fail("Unexpected end of template. " + looking_for(end_tags, innermost));
      }
      if (tok.kind == K::Text) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Text;
        s->line = tok.line;
        s->text = tok.text;
        body.push_back(std::move(s));
        next();
      } else if (tok.kind == K::VariableBegin) {
        next();
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Output;
        s->line = tok.line;
        s->expr = parse_tuple();
        if (cur().kind != K::VariableEnd) fail("expected token 'end of print statement', got '" + describe(cur()) + "'");
        next();
        body.push_back(std::move(s));
      } else if (tok.kind == K::BlockBegin) {
        next();
        if (cur().kind != K::Name) fail("tag name expected");
        for (const auto& e : end_tags)
          if (cur().text == e) return body;
        body.push_back(parse_statement(end_tags, innermost));
      } else {
        fail("unexpected '" + describe(tok) + "'");
      }
    }
  }

  static std::string looking_for(const std::vector<std::string>& tags, const char* innermost) {
    std::string s = "Jinja was looking for the following tags: ";
    for (size_t i = 0; i < tags.size(); ++i) s += (i ? " or '" : "'") + tags[i] + "'";
    s += ".";
    if (innermost) s += std::string(" The innermost block that needs to be closed is '") + innermost + "'.";
    return s;
  }

  // Nesting guard: a hostile template must get an error, not exhaust the stack.
  struct Nesting {
    explicit Nesting(Parser& p) : p(p) {
      if (++p.depth_ > kMaxNesting) throw TemplateError("template nesting is too deep", p.cur().line);
    }
    ~Nesting() { --p.depth_; }
    Parser& p;
  };
  static constexpr int kMaxNesting = 256;

  StmtPtr parse_statement(const std::vector<std::string>& outer_end, const char* outer_innermost) {
    Nesting guard(*this);
    int line = cur().line;
    std::string tag = cur().text;
    auto s = std::make_unique<Stmt>();
    s->line = line;
    next();
    if (tag == "if") {
      s->kind = Stmt::Kind::If;
      ExprPtr cond = parse_tuple();
      expect_block_end();
      while (true) {
        Body b = parse_body({"elif", "else", "endif"}, "if");
        s->branches.emplace_back(std::move(cond), std::move(b));
        std::string t = cur().text;
        next();
        if (t == "elif") {
          cond = parse_tuple();
          expect_block_end();
          continue;
        }
        if (t == "else") {
          expect_block_end();
          s->else_body = parse_body({"endif"}, "if");
          next();
        }
        expect_block_end();
        break;
      }
    } else if (tag == "for") {
      s->kind = Stmt::Kind::For;
      s->targets = parse_targets();
      if (!skip_name("in")) fail("expected token 'in', got '" + describe(cur()) + "'");
      s->expr = parse_tuple(/*with_condexpr=*/false);
      if (skip_name("if")) s->condition = parse_expression();
      if (is_name("recursive")) fail("recursive for loops are not supported");
      expect_block_end();
      s->body = parse_body({"endfor", "else"}, "for");
      if (cur().text == "else") {
        next();
        expect_block_end();
        s->else_body = parse_body({"endfor"}, "for");
      }
      next();
      expect_block_end();
    } else if (tag == "set") {
      if (cur().kind == K::Name && peek().kind == K::Operator && peek().text == "." && peek(2).kind == K::Name) {
        s->kind = Stmt::Kind::Set;
        s->targets = {cur().text};
        next();
        next();
        s->attribute = cur().text;
        next();
        expect_op("=");
        s->expr = parse_tuple();
        expect_block_end();
      } else {
        s->targets = parse_targets();
        if (skip_op("=")) {
          s->kind = Stmt::Kind::Set;
          s->expr = parse_tuple();
          expect_block_end();
        } else {
          s->kind = Stmt::Kind::SetBlock;
          if (s->targets.size() != 1) fail("a block set takes exactly one target");
          s->expr = parse_filter_chain(nullptr);
          expect_block_end();
          s->body = parse_body({"endset"}, "set");
          next();
          expect_block_end();
        }
      }
    } else if (tag == "macro") {
      s->kind = Stmt::Kind::Macro;
      s->text = expect_name();
      parse_params(*s);
      expect_block_end();
      s->body = parse_body({"endmacro"}, "macro");
      next();
      if (cur().kind == K::Name) next();  // {% endmacro name %}
      expect_block_end();
    } else if (tag == "call") {
      s->kind = Stmt::Kind::CallBlock;
      if (is_op("(")) parse_params(*s);
      s->expr = parse_expression();
      if (s->expr->kind != Expr::Kind::Call) fail("expected call");
      expect_block_end();
      s->body = parse_body({"endcall"}, "call");
      next();
      expect_block_end();
    } else if (tag == "filter") {
      s->kind = Stmt::Kind::FilterBlock;
      s->expr = parse_filter_chain(nullptr, /*first_without_pipe=*/true);
      expect_block_end();
      s->body = parse_body({"endfilter"}, "filter");
      next();
      expect_block_end();
    } else if (tag == "break" || tag == "continue") {
      s->kind = tag == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue;
      expect_block_end();
    } else if (tag == "generation") {
      s->kind = Stmt::Kind::Generation;
      expect_block_end();
      s->body = parse_body({"endgeneration"}, "generation");
      next();
      expect_block_end();
    } else {
      std::string message = "Encountered unknown tag '" + tag + "'.";
      if (!outer_end.empty()) message += " " + looking_for(outer_end, outer_innermost);
      throw TemplateError(message, line);
    }
    return s;
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = skip_op("(");
    names.push_back(expect_name());
    while (skip_op(",")) {
      if (cur().kind != K::Name) break;
      names.push_back(expect_name());
    }
    if (paren) expect_op(")");
    return names;
  }

  void parse_params(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      if (!s.params.empty()) expect_op(",");
      std::string name = expect_name();
      ExprPtr def;
      if (skip_op("=")) def = parse_expression();
      s.params.emplace_back(name, std::move(def));
    }
    next();
  }

  // A chain of filters applied to `operand` (null: the rendered block body).
  ExprPtr parse_filter_chain(ExprPtr operand, bool first_without_pipe = false) {
    bool first = first_without_pipe;
    while (first || is_op("|")) {
      if (!first) next();
      first = false;
      operand = parse_filter(std::move(operand));
    }
    return operand;
  }

  // ---- expressions ----

  ExprPtr parse_tuple(bool with_condexpr = true) {
    int line = cur().line;
    std::vector<ExprPtr> items;
    bool saw_comma = false;
    while (true) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        saw_comma = true;
      }
      if (cur().kind == K::BlockEnd || cur().kind == K::VariableEnd || is_op(")") || is_name("in") ||
          (!items.empty() && is_name("if")))
        break;
      items.push_back(with_condexpr ? parse_expression() : parse_or());
    }
    if (items.empty()) fail("Expected an expression, got '" + describe(cur()) + "'");
    if (!saw_comma) return std::move(items[0]);
    auto e = make(Expr::Kind::TupleLit, line);
    e->args = std::move(items);
    return e;
  }

  ExprPtr parse_expression() {
    Nesting guard(*this);
    ExprPtr expr = parse_or();
    while (is_name("if")) {
      int line = cur().line;
      next();
      auto c = make(Expr::Kind::Conditional, line);
      c->args.push_back(parse_or());
      c->args.push_back(std::move(expr));
      c->args.push_back(skip_name("else") ? parse_expression() : nullptr);
      expr = std::move(c);
    }
    return expr;
  }

  ExprPtr binary(const char* op, ExprPtr l, ExprPtr r, int line) {
    auto e = make(Expr::Kind::Binary, line);
    e->name = op;
    e->args.push_back(std::move(l));
    e->args.push_back(std::move(r));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr l = parse_and();
    while (is_name("or")) {
      int line = cur().line;
      next();
      l = binary("or", std::move(l), parse_and(), line);
    }
    return l;
  }
  ExprPtr parse_and() {
    ExprPtr l = parse_not();
    while (is_name("and")) {
      int line = cur().line;
      next();
      l = binary("and", std::move(l), parse_not(), line);
    }
    return l;
  }
  ExprPtr parse_not() {
    Nesting guard(*this);
    if (is_name("not")) {
      auto e = make(Expr::Kind::Unary, cur().line);
      next();
      e->name = "not";
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    int line = cur().line;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().kind == K::Operator &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" ||
           cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        next();
      } else if (is_name("in")) {
        op = "in";
        next();
      } else if (is_name("not") && peek().kind == K::Name && peek().text == "in") {
        op = "not in";
        next();
        next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(Expr::Kind::Compare, line);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }
  ExprPtr parse_math1() {
    ExprPtr l = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text;
      int line = cur().line;
      next();
      l = binary(op == "+" ? "+" : "-", std::move(l), parse_concat(), line);
    }
    return l;
  }
  ExprPtr parse_concat() {
    ExprPtr l = parse_math2();
    while (is_op("~")) {
      int line = cur().line;
      next();
      l = binary("~", std::move(l), parse_math2(), line);
    }
    return l;
  }
  ExprPtr parse_math2() {
    ExprPtr l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text;
      int line = cur().line;
      next();
      auto e = make(Expr::Kind::Binary, line);
      e->name = op;
      e->args.push_back(std::move(l));
      e->args.push_back(parse_pow());
      l = std::move(e);
    }
    return l;
  }
  ExprPtr parse_pow() {
    ExprPtr l = parse_unary();
    while (is_op("**")) {
      int line = cur().line;
      next();
      l = binary("**", std::move(l), parse_unary(), line);
    }
    return l;
  }
  ExprPtr parse_unary(bool with_filter = true) {
    Nesting guard(*this);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      auto e = make(Expr::Kind::Unary, cur().line);
      e->name = cur().text;
      next();
      e->args.push_back(parse_unary(false));
      node = std::move(e);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& tok = cur();
    int line = tok.line;
    if (tok.kind == K::Name) {
      std::string n = tok.text;
      next();
      if (n == "true" || n == "True") return literal(Value(true), line);
      if (n == "false" || n == "False") return literal(Value(false), line);
      if (n == "none" || n == "None") return literal(Value::none(), line);
      auto e = make(Expr::Kind::Name, line);
      e->name = n;
      return e;
    }
    if (tok.kind == K::String) {
      std::string s = tok.text;
      next();
      while (cur().kind == K::String) {  // adjacent literals concatenate
        s += cur().text;
        next();
      }
      return literal(Value(s), line);
    }
    if (tok.kind == K::Integer) {
      int64_t v = tok.integer;
      next();
      return literal(Value(v), line);
    }
    if (tok.kind == K::Float) {
      double v = tok.number;
      next();
      return literal(Value(v), line);
    }
    if (skip_op("(")) {
      if (skip_op(")")) {
        auto e = make(Expr::Kind::TupleLit, line);
        return e;
      }
      ExprPtr inner = parse_tuple();
      expect_op(")");
      return inner;
    }
    if (skip_op("[")) {
      auto e = make(Expr::Kind::ListLit, line);
      while (!is_op("]")) {
        if (!e->args.empty()) {
          expect_op(",");
          if (is_op("]")) break;
        }
        e->args.push_back(parse_expression());
      }
      next();
      return e;
    }
    if (skip_op("{")) {
      auto e = make(Expr::Kind::DictLit, line);
      while (!is_op("}")) {
        if (!e->args.empty()) {
          expect_op(",");
          if (is_op("}")) break;
        }
        e->args.push_back(parse_expression());
        expect_op(":");
        e->args.push_back(parse_expression());
      }
      next();
      return e;
    }
    fail("Expected an expression, got '" + describe(tok) + "'");
  }

  ExprPtr literal(Value v, int line) {
    auto e = make(Expr::Kind::Literal, line);
    e->value = std::move(v);
    return e;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      int line = cur().line;
      if (is_op(".")) {
        next();
        auto e = make(Expr::Kind::GetAttr, line);
        if (cur().kind == K::Name) {
          e->name = cur().text;
        } else if (cur().kind == K::Integer) {  // foo.0 is foo[0]
          e->kind = Expr::Kind::GetItem;
          e->args.push_back(std::move(node));
          e->args.push_back(literal(Value(cur().integer), line));
          next();
          node = std::move(e);
          continue;
        } else {
          fail("expected name or number");
        }
        next();
        e->args.push_back(std::move(node));
        node = std::move(e);
      } else if (is_op("[")) {
        next();
        node = parse_subscript(std::move(node), line);
      } else if (is_op("(")) {
        auto e = make(Expr::Kind::Call, line);
        e->args.push_back(std::move(node));
        parse_call_args(*e);
        node = std::move(e);
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node, int line) {
    ExprPtr parts[3];
    int part = 0;
    bool is_slice = false;
    while (!is_op("]")) {
      if (skip_op(":")) {
        is_slice = true;
        if (++part > 2) fail("invalid slice");
        continue;
      }
      if (parts[part]) fail("expected ']'");
      parts[part] = parse_expression();
      if (!is_slice && is_op(",")) {  // x[a, b]: a tuple key
        auto t = make(Expr::Kind::TupleLit, line);
        t->args.push_back(std::move(parts[0]));
        while (skip_op(",")) t->args.push_back(parse_expression());
        parts[0] = std::move(t);
      }
    }
    next();
    auto e = make(is_slice ? Expr::Kind::Slice : Expr::Kind::GetItem, line);
    e->args.push_back(std::move(node));
    if (!is_slice) {
      if (!parts[0]) fail("expected an index");
      e->args.push_back(std::move(parts[0]));
    } else {
      for (auto& p : parts) e->args.push_back(std::move(p));
    }
    return e;
  }

  void parse_call_args(Expr& call) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (cur().kind == K::Name && peek().kind == K::Operator && peek().text == "=") {
        std::string key = cur().text;
        next();
        next();
        call.kwargs.emplace_back(key, parse_expression());
      } else {
        if (!call.kwargs.empty()) fail("positional argument follows keyword argument");
        call.args.push_back(parse_expression());
      }
    }
    next();
  }

  ExprPtr parse_filter(ExprPtr operand) {
    int line = cur().line;
    std::string name = expect_name();
    while (is_op(".")) {  // dotted filter names
      next();
      name += "." + expect_name();
    }
    if (!has_filter(name)) throw TemplateError("No filter named '" + name + "'.", line);
    auto e = make(Expr::Kind::Filter, line);
    e->name = name;
    e->args.push_back(std::move(operand));
    if (is_op("(")) parse_call_args(*e);
    return e;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        next();
        node = parse_filter(std::move(node));
      } else if (is_name("is")) {
        int line = cur().line;
        next();
        auto e = make(Expr::Kind::Test, line);
        e->negated = skip_name("not");
        e->name = expect_name();
        while (is_op(".")) {
          next();
          e->name += "." + expect_name();
        }
        if (!has_test(e->name)) throw TemplateError("No test named '" + e->name + "'.", line);
        e->args.push_back(std::move(node));
        if (is_op("(")) {
          parse_call_args(*e);
        } else if ((cur().kind == K::Name || cur().kind == K::String || cur().kind == K::Integer ||
                    cur().kind == K::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          ExprPtr arg = parse_primary();
          e->args.push_back(parse_postfix(std::move(arg)));
        }
        node = std::move(e);
      } else {
        return node;
      }
    }
  }

  const std::vector<Token>& t_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

Expr::~Expr() {
  std::vector<ExprPtr> pending;
  auto take_children = [&pending](Expr& e) {
    for (auto& a : e.args)
      if (a) pending.push_back(std::move(a));
    for (auto& kv : e.kwargs)
      if (kv.second) pending.push_back(std::move(kv.second));
  };
  take_children(*this);
  while (!pending.empty()) {
    ExprPtr e = std::move(pending.back());
    pending.pop_back();
    take_children(*e);
  }  // each node dies childless
}

namespace {

// Rendering recurses over expressions; bound their depth (chains like a.b.c... or 1+1+... are built
// by loops in the parser, not by its recursion, so they are measured here, without recursion).
constexpr size_t kMaxExpressionDepth = 512;

void check_depth(const Expr* root) {
  std::vector<std::pair<const Expr*, size_t>> stack = {{root, 1}};
  while (!stack.empty()) {
    auto [e, depth] = stack.back();
    stack.pop_back();
    if (depth > kMaxExpressionDepth) throw TemplateError("template expression is too deeply nested", e->line);
    for (const auto& a : e->args)
      if (a) stack.emplace_back(a.get(), depth + 1);
    for (const auto& kv : e->kwargs)
      if (kv.second) stack.emplace_back(kv.second.get(), depth + 1);
  }
}

void check_depth(const Body& body) {
  for (const auto& s : body) {
    for (const Expr* e : {s->expr.get(), s->condition.get()})
      if (e) check_depth(e);
    for (const auto& [cond, b] : s->branches) {
      if (cond) check_depth(cond.get());
      check_depth(b);
    }
    for (const auto& p : s->params)
      if (p.second) check_depth(p.second.get());
    check_depth(s->body);
    check_depth(s->else_body);
  }
}

}  // namespace

Body parse(const std::vector<Token>& tokens) {
  Body body = Parser(tokens).parse_template();
  check_depth(body);
  return body;
}

}  // namespace chassis::jinja
