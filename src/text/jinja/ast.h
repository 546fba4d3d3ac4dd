#pragma once
// Syntax tree of a parsed template: expressions and statements of the supported Jinja subset.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja/value.h"

namespace hylora::text::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    Literal,   // value
    Name,      // name
    GetAttr,   // a.name
    GetItem,   // a[b]
    Slice,     // a[b:c:d]  (children may be null)
    Call,      // a(args, kwargs)
    Filter,    // a | name(args, kwargs)
    Test,      // a is [not] name(args)
    Unary,     // op a   (op: "not", "-", "+")
    Binary,    // a op b
    Ternary,   // b if a else c
    List,      // [args]
    Tuple,     // (args)
    Dict,      // {keys[i]: args[i]}
  };
  Kind kind;
  int line = 0;
  int depth = 1;  // height of this subtree (the parser bounds it: evaluation and destruction recurse over it)
  Value value;
  std::string name;  // variable / attribute / filter / test name, or operator
  bool negated = false;
  ExprPtr a, b, c;
  std::vector<ExprPtr> args;
  std::vector<ExprPtr> keys;                               // Dict keys
  std::vector<std::pair<std::string, ExprPtr>> kwargs;     // keyword arguments
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind {
    Text,        // text
    Output,      // {{ expr }}
    If,          // conds[i] -> bodies[i]; else_body
    For,         // for targets in expr [if cond]: body, else_body
    Set,         // set targets (or target.attr) = expr, or block form: body
    Macro,       // macro name(params = defaults): body
    Break,
    Continue,
    FilterBlock, // filter name(args): body  -> expr holds the Filter node applied to a placeholder
    Generation,  // generation ... endgeneration (transformers' AssistantTracker): body rendered as is
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr, cond;
  std::vector<ExprPtr> conds;
  std::vector<Body> bodies;
  Body body, else_body;
  std::vector<std::string> targets;
  std::string attr;                      // set ns.attr = ...
  std::vector<std::string> params;       // macro parameters
  std::vector<ExprPtr> defaults;         // default per parameter (null when none)
};

}  // namespace hylora::text::jinja
