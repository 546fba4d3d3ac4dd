#pragma once
// The values a chat template computes with: Python/Jinja2 semantics (truthiness, str(), repr(), ==) over
// JSON-like data, plus Undefined, namespaces and callables (macros, built-in functions).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace hylora::text::jinja {

// A template from a model directory is outside data: its work is bounded (docs/hostile_input.md). Exceeding a
// limit is a render error naming it, as Jinja2's sandbox raises (transformers caps range() at 100,000).
namespace limits {
inline constexpr int64_t kMaxRange = 100000;                // items of one range()
inline constexpr std::size_t kMaxString = std::size_t{16} << 20;  // bytes of any string, and of the output
inline constexpr std::size_t kMaxItems = std::size_t{1} << 20;    // items of one list
inline constexpr int kMaxNesting = 256;                     // nesting of values, of expressions, of blocks
inline constexpr int kMaxCallDepth = 400;                   // evaluation depth (macro recursion included)
inline constexpr int64_t kMaxLoopIterations = 1000000;      // for-loop iterations of one render
// Work of one render, in units of about 8 bytes copied: one per evaluated expression, plus bytes / 8 of every
// string and 16 per item of every list or dict an expression produced. Bounds time and memory together (a list grown
// by concatenation in a loop is quadratic; a big string copied into many list items is caught by no size limit).
inline constexpr int64_t kMaxWork = int64_t{1} << 27;
}  // namespace limits

// Fails unless a string of `bytes` bytes is within limits::kMaxString (`what` names the operation).
void check_string_size(std::size_t bytes, const char* what);

class Value;
using Array = std::vector<Value>;

// Insertion-ordered like a Python dict (tojson of tools must keep the user's key order).
struct Object {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value v);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};
using Function = std::function<Value(CallArgs&)>;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, Array, Object, Function };

  Value() = default;  // Undefined
  static Value undefined(std::string name = {});
  static Value none();
  Value(bool b);
  Value(int64_t i);
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(double f);
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}
  static Value array(Array items = {});
  static Value object(Object o = {}, bool is_namespace = false);
  static Value function(Function f);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  // Nesting of arrays/objects (0 for scalars), fixed when the container is built; bounded by limits::kMaxNesting.
  int depth() const { return depth_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float; }  // bool excluded, as Jinja's test
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_object() const { return kind_ == Kind::Object; }
  bool is_function() const { return kind_ == Kind::Function; }
  bool is_namespace() const { return kind_ == Kind::Object && namespace_; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::Bool ? b_ : i_; }
  double as_double() const { return kind_ == Kind::Float ? f_ : static_cast<double>(as_int()); }
  const std::string& as_string() const { return s_; }
  Array& as_array() const { return *arr_; }
  Object& as_object() const { return *obj_; }
  const Function& as_function() const { return *fn_; }
  const std::string& undefined_name() const { return s_; }

  bool truthy() const;
  std::string str() const;   // Python str(): what {{ value }} prints
  std::string repr() const;  // Python repr(): how items print inside str() of a list/dict
  // json.dumps(value, ensure_ascii=False, indent=indent, separators as transformers' tojson, sort_keys=False)
  std::string to_json(int indent = -1) const;
  std::string type_name() const;
  // Items when iterated: array items, string characters, dict keys; error for other kinds.
  Array iterate() const;

 private:
  Kind kind_ = Kind::Undefined;
  bool b_ = false;
  bool namespace_ = false;
  int depth_ = 0;
  int64_t i_ = 0;
  double f_ = 0;
  std::string s_;  // string value, or the name of an undefined variable
  std::shared_ptr<Array> arr_;
  std::shared_ptr<Object> obj_;
  std::shared_ptr<Function> fn_;
};

bool operator==(const Value& a, const Value& b);
// Python's ordering of two numbers, two strings or two lists; throws for other pairs.
int compare(const Value& a, const Value& b);
std::string python_float_repr(double d);

}  // namespace hylora::text::jinja
