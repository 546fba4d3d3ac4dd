// The evaluator: walks the syntax tree over a stack of scopes. As in Jinja2, `for` bodies and macro calls get
// their own scope (a `set` inside a loop does not leak out, hence namespace()), `if` bodies do not.
#include "text/jinja/template.h"

#include <set>
#include <unordered_map>

#include "core/error.h"
#include "text/jinja/builtins.h"
#include "text/jinja/parser.h"

namespace hylora::text::jinja {
namespace {

enum class Flow { Normal, Break, Continue };

class Renderer {
 public:
  explicit Renderer(const Object& variables) {
    frames_.emplace_back();
    for (const auto& name : supported_globals()) frames_[0][name] = make_global(name);
    for (const auto& [k, v] : variables.items) frames_[0][k] = v;
  }

  Flow exec(const Body& body, std::string& out) {
    for (const auto& s : body) {
      Flow f = exec(*s, out);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

 private:
  using Frame = std::unordered_map<std::string, Value>;

  [[noreturn]] static void fail_at(int line, const std::string& what) {
    hylora::fail("chat template line ", line, ": ", what);
  }

  Value lookup(const std::string& name) const {
    for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
      auto f = it->find(name);
      if (f != it->end()) return f->second;
    }
    return Value::undefined(name);
  }

  void assign(const std::vector<std::string>& targets, const Value& v, int line) {
    if (targets.size() == 1) {
      frames_.back()[targets[0]] = v;
      return;
    }
    Array items = v.iterate();
    if (items.size() != targets.size())
      fail_at(line, "cannot unpack " + std::to_string(items.size()) + " values into " +
                        std::to_string(targets.size()) + " names");
    for (std::size_t i = 0; i < targets.size(); ++i) frames_.back()[targets[i]] = items[i];
  }

  // Counts evaluation depth (statements, expressions, macro calls) against limits::kMaxCallDepth.
  struct DepthGuard {
    explicit DepthGuard(int& d) : d_(d) {
      if (++d_ > limits::kMaxCallDepth) {
        --d_;
        hylora::fail("template recursion deeper than ", limits::kMaxCallDepth, " levels (macro calls or nesting)");
      }
    }
    ~DepthGuard() { --d_; }
    int& d_;
  };

  static void check_output(const std::string& out) { check_string_size(out.size(), "template output"); }

  // A namespace attribute may not hold a namespace: no cycles (ns.x = ns), and value depth stays as computed.
  static bool holds_namespace(const Value& v, std::set<const void*>& seen) {
    if (v.is_namespace()) return true;
    if (v.is_array() && seen.insert(&v.as_array()).second) {
      for (const auto& x : v.as_array())
        if (holds_namespace(x, seen)) return true;
    } else if (v.is_object() && seen.insert(&v.as_object()).second) {
      for (const auto& [k, x] : v.as_object().items)
        if (holds_namespace(x, seen)) return true;
    }
    return false;
  }

  Flow exec(const Stmt& s, std::string& out) {
    try {
      DepthGuard guard(depth_);
      Flow f = exec_unchecked(s, out);
      check_output(out);
      return f;
    } catch (const hylora::Error& e) {
      std::string msg = e.what();
      if (msg.rfind("chat template line", 0) == 0) throw;  // already located
      fail_at(s.line, msg);
    }
  }

  Flow exec_unchecked(const Stmt& s, std::string& out) {
    switch (s.kind) {
      case Stmt::Kind::Text:
        out += s.text;
        return Flow::Normal;
      case Stmt::Kind::Output:
        out += eval(*s.expr).str();
        return Flow::Normal;
      case Stmt::Kind::If:
        for (std::size_t i = 0; i < s.conds.size(); ++i)
          if (eval(*s.conds[i]).truthy()) return exec(s.bodies[i], out);
        return exec(s.else_body, out);
      case Stmt::Kind::For:
        return exec_for(s, out);
      case Stmt::Kind::Set: {
        Value v;
        if (s.expr) {
          v = eval(*s.expr);
        } else {
          std::string captured;
          exec(s.body, captured);
          v = Value(captured);
        }
        if (!s.attr.empty()) {
          Value ns = lookup(s.targets[0]);
          if (!ns.is_namespace()) fail_at(s.line, "cannot set attribute of '" + s.targets[0] + "': not a namespace");
          std::set<const void*> seen;
          if (holds_namespace(v, seen))
            fail_at(s.line, "cannot store a namespace inside namespace '" + s.targets[0] + "' (not supported)");
          ns.as_object().set(s.attr, v);
        } else {
          assign(s.targets, v, s.line);
        }
        return Flow::Normal;
      }
      case Stmt::Kind::Macro:
        frames_.back()[s.attr] = make_macro(s);
        return Flow::Normal;
      case Stmt::Kind::Break:
        return Flow::Break;
      case Stmt::Kind::Continue:
        return Flow::Continue;
      case Stmt::Kind::FilterBlock: {
        std::string captured;
        exec(s.body, captured);
        CallArgs args = eval_args(*s.expr);
        out += apply_filter(s.expr->name, Value(captured), args).str();
        return Flow::Normal;
      }
      case Stmt::Kind::Generation:
        return exec(s.body, out);
    }
    return Flow::Normal;
  }

  Flow exec_for(const Stmt& s, std::string& out) {
    Array items = eval(*s.expr).iterate();
    if (s.cond) {  // `for x in xs if cond`: filter first, so loop.* counts only kept items
      Array kept;
      for (const auto& item : items) {
        if (++iterations_ > limits::kMaxLoopIterations)
          fail_at(s.line, "more than " + std::to_string(limits::kMaxLoopIterations) + " loop iterations in one render");
        frames_.emplace_back();
        assign(s.targets, item, s.line);
        bool keep = eval(*s.cond).truthy();
        frames_.pop_back();
        if (keep) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec(s.else_body, out);
    auto n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      if (++iterations_ > limits::kMaxLoopIterations)
        fail_at(s.line, "more than " + std::to_string(limits::kMaxLoopIterations) + " loop iterations in one render");
      frames_.emplace_back();
      Object loop;
      loop.set("index", Value(i + 1));
      loop.set("index0", Value(i));
      loop.set("revindex", Value(n - i));
      loop.set("revindex0", Value(n - i - 1));
      loop.set("first", Value(i == 0));
      loop.set("last", Value(i == n - 1));
      loop.set("length", Value(n));
      loop.set("depth", Value(static_cast<int64_t>(1)));
      loop.set("depth0", Value(static_cast<int64_t>(0)));
      loop.set("previtem", i > 0 ? items[i - 1] : Value::undefined("previtem"));
      loop.set("nextitem", i + 1 < n ? items[i + 1] : Value::undefined("nextitem"));
      frames_.back()["loop"] = Value::object(std::move(loop));
      assign(s.targets, items[i], s.line);
      Flow f = exec(s.body, out);
      frames_.pop_back();
      if (f == Flow::Break) break;
    }
    return Flow::Normal;
  }

  Value make_macro(const Stmt& s) {
    const Stmt* def = &s;
    return Value::function([this, def](CallArgs& a) {
      if (a.positional.size() > def->params.size())
        hylora::fail("macro '", def->attr, "' takes ", def->params.size(), " arguments, got ", a.positional.size());
      Frame frame;
      for (std::size_t i = 0; i < def->params.size(); ++i) {
        const std::string& p = def->params[i];
        Value v = Value::undefined(p);
        if (i < a.positional.size()) v = a.positional[i];
        else if (def->defaults[i]) v = eval(*def->defaults[i]);
        frame[p] = v;
      }
      for (auto& [k, v] : a.keyword) {
        if (std::find(def->params.begin(), def->params.end(), k) == def->params.end())
          hylora::fail("macro '", def->attr, "' has no parameter '", k, "'");
        frame[k] = v;
      }
      // A macro sees the template's globals and its own parameters, not the caller's loop variables.
      std::vector<Frame> saved(frames_.begin() + 1, frames_.end());
      frames_.resize(1);
      frames_.push_back(std::move(frame));
      std::string out;
      try {
        exec(def->body, out);
      } catch (...) {
        frames_.resize(1);
        frames_.insert(frames_.end(), saved.begin(), saved.end());
        throw;
      }
      frames_.resize(1);
      frames_.insert(frames_.end(), saved.begin(), saved.end());
      return Value(out);
    });
  }

  CallArgs eval_args(const Expr& e) {
    CallArgs a;
    for (const auto& x : e.args) a.positional.push_back(eval(*x));
    for (const auto& [k, x] : e.kwargs) a.keyword.emplace_back(k, eval(*x));
    return a;
  }

  Value eval(const Expr& e) {
    DepthGuard guard(depth_);
    Value v = eval_unchecked(e);
    // One unit ~ 8 bytes copied: a string counts its bytes / 8, a list or dict item (a Value, ~128 bytes) 16.
    work_ += 1;
    if (v.is_string()) {
      check_string_size(v.as_string().size(), "expression");
      work_ += static_cast<int64_t>(v.as_string().size() / 8);
    } else if (v.is_array()) {
      work_ += 16 * static_cast<int64_t>(v.as_array().size());
    } else if (v.is_object()) {
      work_ += 16 * static_cast<int64_t>(v.as_object().items.size());
    }
    if (work_ > limits::kMaxWork)
      hylora::fail("template work over the limit of ", limits::kMaxWork,
                   " (about 8 bytes copied per unit: evaluated expressions, the strings and lists they produced)");
    return v;
  }

  Value eval_unchecked(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::Literal:
        return e.value;
      case Expr::Kind::Name:
        return lookup(e.name);
      case Expr::Kind::GetAttr:
        return get_attr(eval(*e.a), e.name);
      case Expr::Kind::GetItem:
        return get_item(eval(*e.a), eval(*e.b));
      case Expr::Kind::Slice:
        return slice(eval(*e.a), e.b ? eval(*e.b) : Value(), e.c ? eval(*e.c) : Value(),
                     e.args.empty() ? Value() : eval(*e.args[0]));
      case Expr::Kind::Call: {
        CallArgs a = eval_args(e);
        if (e.a->kind == Expr::Kind::GetAttr) {
          Value obj = eval(*e.a->a);
          if (obj.is_object() && !obj.is_namespace()) {
            const Value* member = obj.as_object().find(e.a->name);
            if (member && member->is_function()) return member->as_function()(a);
          }
          return call_method(obj, e.a->name, a);
        }
        Value f = eval(*e.a);
        if (!f.is_function()) hylora::fail("'", f.is_undefined() ? f.undefined_name() : f.type_name(), "' is not callable");
        return f.as_function()(a);
      }
      case Expr::Kind::Filter: {
        CallArgs a = eval_args(e);
        return apply_filter(e.name, eval(*e.a), a);
      }
      case Expr::Kind::Test: {
        CallArgs a = eval_args(e);
        bool r = apply_test(e.name, eval(*e.a), a);
        return Value(e.negated ? !r : r);
      }
      case Expr::Kind::Unary: {
        Value v = eval(*e.a);
        if (e.name == "not") return Value(!v.truthy());
        if (!v.is_number() && !v.is_bool()) hylora::fail("bad operand type for unary ", e.name, ": '", v.type_name(), "'");
        if (e.name == "+") return v;
        if (!v.is_float() && v.as_int() == INT64_MIN)
          hylora::fail("integer overflow in -(", v.as_int(), ") (template integers are 64-bit)");
        return v.is_float() ? Value(-v.as_double()) : Value(-v.as_int());
      }
      case Expr::Kind::Binary: {
        if (e.name == "and") {
          Value l = eval(*e.a);
          return l.truthy() ? eval(*e.b) : l;
        }
        if (e.name == "or") {
          Value l = eval(*e.a);
          return l.truthy() ? l : eval(*e.b);
        }
        return binary_op(e.name, eval(*e.a), eval(*e.b));
      }
      case Expr::Kind::Ternary:
        if (eval(*e.a).truthy()) return eval(*e.b);
        return e.c ? eval(*e.c) : Value::undefined();
      case Expr::Kind::List:
      case Expr::Kind::Tuple: {
        Array items;
        for (const auto& x : e.args) items.push_back(eval(*x));
        return Value::array(std::move(items));
      }
      case Expr::Kind::Dict: {
        Object o;
        for (std::size_t i = 0; i < e.keys.size(); ++i) o.set(eval(*e.keys[i]).str(), eval(*e.args[i]));
        return Value::object(std::move(o));
      }
    }
    return Value();
  }

  std::vector<Frame> frames_;
  int depth_ = 0;
  int64_t iterations_ = 0;
  int64_t work_ = 0;
};

}  // namespace

namespace {
// Jinja2's lexer turns \r\n and \r into \n (newline_sequence) and, keep_trailing_newline being off in
// transformers' environment, drops one newline at the very end of the template.
std::string normalize_source(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}
}  // namespace

Template::Template(const std::string& source) : body_(parse_template(normalize_source(source))) {}

std::string Template::render(const Object& variables) const {
  Renderer r(variables);
  std::string out;
  r.exec(body_, out);
  return out;
}

}  // namespace hylora::text::jinja
