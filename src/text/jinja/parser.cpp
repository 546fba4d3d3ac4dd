// Hand-written recursive descent parser with jinja2/parser.py's operator precedence:
// ternary < or < and < not < comparisons/in/is < + - < ~ < * / // % < ** < unary - < postfix . [] () < | filters.
#include "text/jinja/parser.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <set>

#include "core/error.h"
#include "text/jinja/builtins.h"
#include "text/jinja/lexer.h"

namespace hylora::text::jinja {
namespace {

using TK = Token::Kind;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Body parse() {
    Body body = parse_body({});
    if (peek().kind != TK::End) error("unexpected '{% " + peek_block_name() + " %}'");
    check_calls(body);
    return body;
  }

 private:
  // ---- token helpers ----
  const Token& peek(std::size_t k = 0) const { return t_[std::min(pos_ + k, t_.size() - 1)]; }
  const Token& next() { return t_[std::min(pos_++, t_.size() - 1)]; }
  [[noreturn]] void error(const std::string& what) const {
    hylora::fail("chat template line ", peek().line, ": ", what);
  }
  bool is_op(const char* op, std::size_t k = 0) const { return peek(k).kind == TK::Op && peek(k).text == op; }
  bool is_name(const char* n, std::size_t k = 0) const { return peek(k).kind == TK::Name && peek(k).text == n; }
  void expect_op(const char* op) {
    if (!is_op(op)) error(std::string("expected '") + op + "', found '" + describe(peek()) + "'");
    ++pos_;
  }
  void expect_name(const char* n) {
    if (!is_name(n)) error(std::string("expected '") + n + "', found '" + describe(peek()) + "'");
    ++pos_;
  }
  std::string take_name() {
    if (peek().kind != TK::Name) error("expected a name, found '" + describe(peek()) + "'");
    return next().text;
  }
  void expect_block_end() {
    if (peek().kind != TK::BlockEnd) error("expected end of tag '%}', found '" + describe(peek()) + "'");
    ++pos_;
  }
  static std::string describe(const Token& t) {
    switch (t.kind) {
      case TK::VarEnd: return "}}";
      case TK::BlockEnd: return "%}";
      case TK::End: return "end of template";
      case TK::Text: return "text";
      default: return t.text;
    }
  }
  std::string peek_block_name() const { return peek().kind == TK::BlockBegin ? peek(1).text : describe(peek()); }

  // Parser recursion (nested parentheses, unary operators, blocks) and expression-tree height are both bounded by
  // limits::kMaxNesting: a 10k-deep expression or a 50k-term sum is an error, not a stack overflow.
  struct NestGuard {
    NestGuard(Parser& p) : p_(p) {
      if (++p_.nest_ > limits::kMaxNesting) p_.error("nesting deeper than " + std::to_string(limits::kMaxNesting) + " levels");
    }
    ~NestGuard() { --p_.nest_; }
    Parser& p_;
  };
  ExprPtr sized(ExprPtr e) {
    int d = 0;
    for (const Expr* c : {e->a.get(), e->b.get(), e->c.get()})
      if (c) d = std::max(d, c->depth);
    for (const auto& c : e->args)
      if (c) d = std::max(d, c->depth);
    for (const auto& c : e->keys)
      if (c) d = std::max(d, c->depth);
    for (const auto& [k, c] : e->kwargs)
      if (c) d = std::max(d, c->depth);
    e->depth = d + 1;
    if (e->depth > limits::kMaxNesting)
      error("expression nested deeper than " + std::to_string(limits::kMaxNesting) + " levels");
    return e;
  }
  Value int_literal(const std::string& text) const {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size())
      error("integer literal " + text + " is out of range (template integers are 64-bit)");
    return Value(v);
  }

  ExprPtr make(Expr::Kind k) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = peek().line;
    return e;
  }

  // ---- statements ----
  // Parses until a block tag whose name is in `stops` (left unconsumed) or the end of input.
  Body parse_body(const std::set<std::string>& stops) {
    Body body;
    while (true) {
      const Token& t = peek();
      if (t.kind == TK::End) {
        if (!stops.empty()) error("missing '{% " + *stops.begin() + " %}' (unclosed block)");
        return body;
      }
      if (t.kind == TK::Text) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Text;
        s->text = next().text;
        body.push_back(std::move(s));
      } else if (t.kind == TK::VarBegin) {
        ++pos_;
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Output;
        s->line = t.line;
        s->expr = parse_tuple_or_expr();
        if (peek().kind != TK::VarEnd) error("expected '}}', found '" + describe(peek()) + "'");
        ++pos_;
        body.push_back(std::move(s));
      } else if (t.kind == TK::BlockBegin) {
        const Token& name = peek(1);
        if (name.kind == TK::Name && stops.count(name.text)) return body;
        ++pos_;
        body.push_back(parse_statement());
      } else {
        error("unexpected '" + describe(t) + "'");
      }
    }
  }

  StmtPtr parse_statement() {
    NestGuard guard(*this);
    int line = peek().line;
    std::string kw = take_name();
    auto s = std::make_unique<Stmt>();
    s->line = line;
    if (kw == "if") {
      s->kind = Stmt::Kind::If;
      s->conds.push_back(parse_expr());
      expect_block_end();
      s->bodies.push_back(parse_body({"elif", "else", "endif"}));
      while (true) {
        ++pos_;  // BlockBegin
        std::string k = take_name();
        if (k == "elif") {
          s->conds.push_back(parse_expr());
          expect_block_end();
          s->bodies.push_back(parse_body({"elif", "else", "endif"}));
        } else if (k == "else") {
          expect_block_end();
          s->else_body = parse_body({"endif"});
          ++pos_;
          take_name();
          expect_block_end();
          break;
        } else {
          expect_block_end();
          break;
        }
      }
    } else if (kw == "for") {
      s->kind = Stmt::Kind::For;
      s->targets.push_back(take_name());
      while (is_op(",")) {
        ++pos_;
        s->targets.push_back(take_name());
      }
      expect_name("in");
      s->expr = parse_expr(/*allow_ternary=*/false);
      if (is_name("if")) {
        ++pos_;
        s->cond = parse_expr(false);
      }
      if (is_name("recursive")) error("'for ... recursive' is not supported");
      expect_block_end();
      ++loop_depth_;
      s->body = parse_body({"else", "endfor"});
      --loop_depth_;
      ++pos_;
      if (take_name() == "else") {
        expect_block_end();
        s->else_body = parse_body({"endfor"});
        ++pos_;
        take_name();
      }
      expect_block_end();
    } else if (kw == "set") {
      s->kind = Stmt::Kind::Set;
      s->targets.push_back(take_name());
      if (is_op(".")) {
        ++pos_;
        s->attr = take_name();
      }
      while (is_op(",")) {
        ++pos_;
        s->targets.push_back(take_name());
      }
      if (is_op("=")) {
        ++pos_;
        s->expr = parse_tuple_or_expr();
        expect_block_end();
      } else {
        if (s->targets.size() != 1 || !s->attr.empty()) error("block 'set' takes a single variable name");
        if (is_op("|")) error("filtered block 'set' is not supported");
        expect_block_end();
        s->body = parse_body({"endset"});
        ++pos_;
        take_name();
        expect_block_end();
      }
    } else if (kw == "macro") {
      s->kind = Stmt::Kind::Macro;
      s->attr = take_name();
      macros_.insert(s->attr);
      expect_op("(");
      while (!is_op(")")) {
        s->params.push_back(take_name());
        if (is_op("=")) {
          ++pos_;
          s->defaults.push_back(parse_expr());
        } else {
          s->defaults.push_back(nullptr);
        }
        if (!is_op(")")) expect_op(",");
      }
      ++pos_;
      expect_block_end();
      s->body = parse_body({"endmacro"});
      ++pos_;
      take_name();
      expect_block_end();
    } else if (kw == "break" || kw == "continue") {
      if (loop_depth_ == 0) error("'" + kw + "' outside of a for loop");
      s->kind = kw == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue;
      expect_block_end();
    } else if (kw == "filter") {
      s->kind = Stmt::Kind::FilterBlock;
      auto placeholder = make(Expr::Kind::Literal);
      s->expr = parse_filter(std::move(placeholder));
      expect_block_end();
      s->body = parse_body({"endfilter"});
      ++pos_;
      take_name();
      expect_block_end();
    } else if (kw == "generation") {
      s->kind = Stmt::Kind::Generation;
      expect_block_end();
      s->body = parse_body({"endgeneration"});
      ++pos_;
      take_name();
      expect_block_end();
    } else {
      pos_ -= 1;
      error("unsupported statement '{% " + kw + " %}'");
    }
    return s;
  }

  // ---- expressions ----
  ExprPtr parse_tuple_or_expr() {
    auto first = parse_expr();
    if (!is_op(",")) return first;
    auto t = make(Expr::Kind::Tuple);
    t->args.push_back(std::move(first));
    while (is_op(",")) {
      ++pos_;
      if (peek().kind == TK::VarEnd || peek().kind == TK::BlockEnd) break;
      t->args.push_back(parse_expr());
    }
    return t;
  }

  ExprPtr parse_expr(bool allow_ternary = true) {
    NestGuard guard(*this);
    auto e = parse_or();
    while (allow_ternary && is_name("if")) {
      ++pos_;
      auto t = make(Expr::Kind::Ternary);
      t->a = parse_or();
      t->b = std::move(e);
      if (is_name("else")) {
        ++pos_;
        t->c = parse_expr();
      }
      e = sized(std::move(t));
    }
    return e;
  }

  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r) {
    auto e = make(Expr::Kind::Binary);
    e->name = op;
    e->a = std::move(l);
    e->b = std::move(r);
    return sized(std::move(e));
  }

  ExprPtr parse_or() {
    auto e = parse_and();
    while (is_name("or")) {
      ++pos_;
      e = binary("or", std::move(e), parse_and());
    }
    return e;
  }
  ExprPtr parse_and() {
    auto e = parse_not();
    while (is_name("and")) {
      ++pos_;
      e = binary("and", std::move(e), parse_not());
    }
    return e;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      ++pos_;
      auto e = make(Expr::Kind::Unary);
      e->name = "not";
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    auto e = parse_add();
    while (true) {
      std::string op;
      if (peek().kind == TK::Op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                    peek().text == ">" || peek().text == "<=" || peek().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        ++pos_;
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        pos_ += 2;
        op = "not in";
      } else {
        return e;
      }
      // Chained comparisons (a < b < c) are rare in templates; they evaluate pairwise here.
      e = binary(op, std::move(e), parse_add());
    }
  }
  ExprPtr parse_add() {
    auto e = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = next().text;
      e = binary(op, std::move(e), parse_concat());
    }
    return e;
  }
  ExprPtr parse_concat() {
    auto e = parse_mul();
    while (is_op("~")) {
      ++pos_;
      e = binary("~", std::move(e), parse_mul());
    }
    return e;
  }
  ExprPtr parse_mul() {
    auto e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = next().text;
      e = binary(op, std::move(e), parse_pow());
    }
    return e;
  }
  ExprPtr parse_pow() {
    auto e = parse_unary(true);
    while (is_op("**")) {
      ++pos_;
      e = binary("**", std::move(e), parse_unary(true));
    }
    return e;
  }
  ExprPtr parse_unary(bool with_filter) {
    NestGuard guard(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      auto u = make(Expr::Kind::Unary);
      u->name = next().text;
      u->a = parse_unary(false);
      e = std::move(u);
    } else {
      e = parse_postfix(parse_primary());
    }
    if (with_filter) e = parse_filter_and_test(std::move(e));
    return sized(std::move(e));
  }

  ExprPtr parse_primary() {
    const Token& t = peek();
    if (t.kind == TK::Name) {
      ++pos_;
      auto e = make(Expr::Kind::Literal);
      if (t.text == "true" || t.text == "True") e->value = Value(true);
      else if (t.text == "false" || t.text == "False") e->value = Value(false);
      else if (t.text == "none" || t.text == "None") e->value = Value::none();
      else {
        e->kind = Expr::Kind::Name;
        e->name = t.text;
      }
      return e;
    }
    if (t.kind == TK::String) {
      auto e = make(Expr::Kind::Literal);
      std::string s;
      while (peek().kind == TK::String) s += next().text;  // adjacent literals concatenate
      e->value = Value(std::move(s));
      return e;
    }
    if (t.kind == TK::Int || t.kind == TK::Float) {
      auto e = make(Expr::Kind::Literal);
      ++pos_;
      e->value = t.kind == TK::Int ? int_literal(t.text) : Value(std::strtod(t.text.c_str(), nullptr));
      return e;
    }
    if (is_op("(")) {
      ++pos_;
      if (is_op(")")) {
        ++pos_;
        return make(Expr::Kind::Tuple);
      }
      auto e = parse_expr();
      if (is_op(",")) {
        auto tup = make(Expr::Kind::Tuple);
        tup->args.push_back(std::move(e));
        while (is_op(",")) {
          ++pos_;
          if (is_op(")")) break;
          tup->args.push_back(parse_expr());
        }
        e = std::move(tup);
      }
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      ++pos_;
      auto e = make(Expr::Kind::List);
      while (!is_op("]")) {
        e->args.push_back(parse_expr());
        if (!is_op("]")) expect_op(",");
      }
      ++pos_;
      return e;
    }
    if (is_op("{")) {
      ++pos_;
      auto e = make(Expr::Kind::Dict);
      while (!is_op("}")) {
        e->keys.push_back(parse_expr());
        expect_op(":");
        e->args.push_back(parse_expr());
        if (!is_op("}")) expect_op(",");
      }
      ++pos_;
      return e;
    }
    error("unexpected '" + describe(t) + "' in expression");
  }

  void parse_call_args(Expr& call) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().kind == TK::Name && is_op("=", 1)) {
        std::string k = next().text;
        ++pos_;
        call.kwargs.emplace_back(k, parse_expr());
      } else {
        if (is_op("*") || is_op("**")) error("*args / **kwargs in calls are not supported");
        call.args.push_back(parse_expr());
      }
      if (!is_op(")")) expect_op(",");
    }
    ++pos_;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      e = sized(std::move(e));
      if (is_op(".")) {
        ++pos_;
        auto g = make(Expr::Kind::GetAttr);
        if (peek().kind == TK::Int) {  // foo.0 is foo[0]
          g->kind = Expr::Kind::GetItem;
          g->b = make(Expr::Kind::Literal);
          g->b->value = int_literal(next().text);
        } else {
          g->name = take_name();
        }
        g->a = std::move(e);
        e = std::move(g);
      } else if (is_op("[")) {
        ++pos_;
        ExprPtr start, stop, step;
        bool slice = false;
        if (!is_op(":")) start = parse_expr();
        if (is_op(":")) {
          slice = true;
          ++pos_;
          if (!is_op("]") && !is_op(":")) stop = parse_expr();
          if (is_op(":")) {
            ++pos_;
            if (!is_op("]")) step = parse_expr();
          }
        }
        expect_op("]");
        auto g = make(slice ? Expr::Kind::Slice : Expr::Kind::GetItem);
        g->a = std::move(e);
        if (slice) {
          g->b = std::move(start);
          g->c = std::move(stop);
          if (step) g->args.push_back(std::move(step));
        } else {
          g->b = std::move(start);
        }
        e = std::move(g);
      } else if (is_op("(")) {
        auto c = make(Expr::Kind::Call);
        if (e->kind == Expr::Kind::GetAttr && !supported_methods().count(e->name))
          error("unsupported method '" + e->name + "()'");
        parse_call_args(*c);
        c->a = std::move(e);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filter(ExprPtr e) {
    auto f = make(Expr::Kind::Filter);
    f->name = take_name();
    if (!supported_filters().count(f->name)) error("unsupported filter '" + f->name + "'");
    if (is_op("(")) parse_call_args(*f);
    f->a = std::move(e);
    return f;
  }

  ExprPtr parse_filter_and_test(ExprPtr e) {
    while (true) {
      e = sized(std::move(e));
      if (is_op("|")) {
        ++pos_;
        e = parse_postfix(parse_filter(std::move(e)));
      } else if (is_name("is")) {
        ++pos_;
        auto t = make(Expr::Kind::Test);
        if (is_name("not")) {
          ++pos_;
          t->negated = true;
        }
        // Test names may be keywords (none, true, false, in).
        t->name = take_name();
        if (!supported_tests().count(t->name)) error("unsupported test '" + t->name + "'");
        if (is_op("(")) {
          parse_call_args(*t);
        } else if ((peek().kind == TK::Name || peek().kind == TK::String || peek().kind == TK::Int ||
                    peek().kind == TK::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          t->args.push_back(parse_postfix(parse_primary()));  // `x is divisibleby 3`
        }
        t->a = std::move(e);
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  // Calls of a bare name must be a macro of this template or a supported global function.
  void check_expr(const Expr* e) const {
    if (!e) return;
    if (e->kind == Expr::Kind::Call && e->a->kind == Expr::Kind::Name && !macros_.count(e->a->name) &&
        !supported_globals().count(e->a->name))
      hylora::fail("chat template line ", e->line, ": unsupported function '", e->a->name, "()'");
    check_expr(e->a.get());
    check_expr(e->b.get());
    check_expr(e->c.get());
    for (const auto& x : e->args) check_expr(x.get());
    for (const auto& x : e->keys) check_expr(x.get());
    for (const auto& [k, x] : e->kwargs) check_expr(x.get());
  }
  void check_calls(const Body& body) const {
    for (const auto& s : body) {
      check_expr(s->expr.get());
      check_expr(s->cond.get());
      for (const auto& c : s->conds) check_expr(c.get());
      for (const auto& d : s->defaults) check_expr(d.get());
      for (const auto& b : s->bodies) check_calls(b);
      check_calls(s->body);
      check_calls(s->else_body);
    }
  }

  std::vector<Token> t_;
  std::size_t pos_ = 0;
  int loop_depth_ = 0;
  int nest_ = 0;
  std::set<std::string> macros_;
};

}  // namespace

Body parse_template(const std::string& source) { return Parser(tokenize_template(source)).parse(); }

}  // namespace hylora::text::jinja
