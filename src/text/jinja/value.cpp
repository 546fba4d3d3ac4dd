#include "text/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "text/utf8.h"

namespace hylora::text::jinja {

const Value* Object::find(const std::string& key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void Object::set(const std::string& key, Value v) {
  for (auto& [k, old] : items)
    if (k == key) {
      old = std::move(v);
      return;
    }
  items.emplace_back(key, std::move(v));
}

Value Value::undefined(std::string name) {
  Value v;
  v.s_ = std::move(name);
  return v;
}
Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}
Value::Value(bool b) : kind_(Kind::Bool), b_(b) {}
Value::Value(int64_t i) : kind_(Kind::Int), i_(i) {}
Value::Value(double f) : kind_(Kind::Float), f_(f) {}
Value::Value(std::string s) : kind_(Kind::String), s_(std::move(s)) {}
void check_string_size(std::size_t bytes, const char* what) {
  if (bytes > limits::kMaxString)
    hylora::fail(what, ": a string of ", bytes, " bytes is over the limit of ", limits::kMaxString, " bytes");
}

namespace {
// A container's depth from its items; refused past the limit so that printing, comparing and freeing it stay
// within the stack.
int container_depth(int deepest_item) {
  if (deepest_item + 1 > limits::kMaxNesting)
    hylora::fail("values nested deeper than ", limits::kMaxNesting, " levels");
  return deepest_item + 1;
}
}  // namespace

Value Value::array(Array items) {
  if (items.size() > limits::kMaxItems)
    hylora::fail("a list of ", items.size(), " items is over the limit of ", limits::kMaxItems);
  int deepest = 0;
  for (const auto& x : items) deepest = std::max(deepest, x.depth_);
  Value v;
  v.depth_ = container_depth(deepest);
  v.kind_ = Kind::Array;
  v.arr_ = std::make_shared<Array>(std::move(items));
  return v;
}
Value Value::object(Object o, bool is_namespace) {
  int deepest = 0;
  for (const auto& [k, x] : o.items) deepest = std::max(deepest, x.depth());
  Value v;
  v.depth_ = container_depth(deepest);
  v.kind_ = Kind::Object;
  v.obj_ = std::make_shared<Object>(std::move(o));
  v.namespace_ = is_namespace;
  return v;
}
Value Value::function(Function f) {
  Value v;
  v.kind_ = Kind::Function;
  v.fn_ = std::make_shared<Function>(std::move(f));
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return none();
    case nlohmann::json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      if (j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        hylora::fail("chat template input: integer ", j.dump(), " is outside the 64-bit range of template integers");
      return Value(static_cast<int64_t>(j.get<uint64_t>()));
    case nlohmann::json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      Array a;
      for (const auto& e : j) a.push_back(from_json(e));
      return array(std::move(a));
    }
    case nlohmann::json::value_t::object: {
      Object o;
      for (const auto& [k, v] : j.items()) o.items.emplace_back(k, from_json(v));
      return object(std::move(o));
    }
    default:
      hylora::fail("chat template input: unsupported JSON value ", j.dump());
  }
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None:
      return false;
    case Kind::Bool:
      return b_;
    case Kind::Int:
      return i_ != 0;
    case Kind::Float:
      return f_ != 0;
    case Kind::String:
      return !s_.empty();
    case Kind::Array:
      return !arr_->empty();
    case Kind::Object:
      return namespace_ || !obj_->items.empty();
    case Kind::Function:
      return true;
  }
  return false;
}

std::string python_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // e.g. "-1.2345e+02": shortest round-trip digits
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  auto epos = sci.find('e');
  int exp = std::stoi(sci.substr(epos + 1));
  std::string digits;
  for (char c : sci.substr(0, epos))
    if (c != '.') digits += c;
  std::string out;
  if (exp >= -5 + 1 && exp < 16) {  // Python repr: fixed notation for 1e-4 <= |d| < 1e16
    if (exp < 0) {
      out.append("0.").append(static_cast<std::size_t>(-exp - 1), '0').append(digits);
    } else if (static_cast<std::size_t>(exp) + 1 >= digits.size()) {
      out.append(digits).append(exp + 1 - digits.size(), '0').append(".0");
    } else {
      out.append(digits, 0, exp + 1).append(".").append(digits, exp + 1);
    }
  } else {
    out.append(digits, 0, 1);
    if (digits.size() > 1) out.append(".").append(digits, 1);
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += e;
  }
  if (neg) out.insert(out.begin(), '-');
  return out;
}

namespace {

std::string python_string_repr(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  char q = has_single && !has_double ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == q || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += q;
  return out;
}

void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (u < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out += c;  // ensure_ascii=False
        }
    }
  }
  out += '"';
}

void json_dump(std::string& out, const Value& v, int indent, int depth) {
  auto newline = [&](int d) {
    out += '\n';
    out.append(static_cast<std::size_t>(indent * d), ' ');
  };
  // transformers' tojson: separators (', ', ': ') without indent, (',', ': ') with it.
  const char* item_sep = indent >= 0 ? "," : ", ";
  switch (v.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None:
      out += "null";
      break;
    case Value::Kind::Bool:
      out += v.as_bool() ? "true" : "false";
      break;
    case Value::Kind::Int:
      out += std::to_string(v.as_int());
      break;
    case Value::Kind::Float: {
      double d = v.as_double();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : python_float_repr(d);
      break;
    }
    case Value::Kind::String:
      json_string(out, v.as_string());
      break;
    case Value::Kind::Array: {
      const auto& a = v.as_array();
      if (a.empty()) {
        out += "[]";
        break;
      }
      out += '[';
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (i) out += item_sep;
        if (indent >= 0) newline(depth + 1);
        json_dump(out, a[i], indent, depth + 1);
        check_string_size(out.size(), "tojson");
      }
      if (indent >= 0) newline(depth);
      out += ']';
      break;
    }
    case Value::Kind::Object: {
      const auto& o = v.as_object().items;
      if (o.empty()) {
        out += "{}";
        break;
      }
      out += '{';
      for (std::size_t i = 0; i < o.size(); ++i) {
        if (i) out += item_sep;
        if (indent >= 0) newline(depth + 1);
        json_string(out, o[i].first);
        out += ": ";
        json_dump(out, o[i].second, indent, depth + 1);
        check_string_size(out.size(), "tojson");
      }
      if (indent >= 0) newline(depth);
      out += '}';
      break;
    }
    case Value::Kind::Function:
      hylora::fail("tojson: a function is not JSON serializable");
  }
}

}  // namespace

std::string Value::str() const {
  switch (kind_) {
    case Kind::Undefined:
      return "";
    case Kind::None:
      return "None";
    case Kind::Bool:
      return b_ ? "True" : "False";
    case Kind::Int:
      return std::to_string(i_);
    case Kind::Float:
      return python_float_repr(f_);
    case Kind::String:
      return s_;
    case Kind::Array: {
      std::string out = "[";
      for (std::size_t i = 0; i < arr_->size(); ++i) {
        out += (i ? ", " : "") + (*arr_)[i].repr();
        check_string_size(out.size(), "str()");
      }
      return out + "]";
    }
    case Kind::Object: {
      if (namespace_) return "<Namespace>";
      std::string out = "{";
      for (std::size_t i = 0; i < obj_->items.size(); ++i) {
        out += (i ? ", " : "") + python_string_repr(obj_->items[i].first) + ": " + obj_->items[i].second.repr();
        check_string_size(out.size(), "str()");
      }
      return out + "}";
    }
    case Kind::Function:
      return "<function>";
  }
  return "";
}

std::string Value::repr() const { return kind_ == Kind::String ? python_string_repr(s_) : str(); }

std::string Value::to_json(int indent) const {
  std::string out;
  json_dump(out, *this, indent, 0);
  return out;
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::Undefined: return "undefined";
    case Kind::None: return "none";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::Array: return "list";
    case Kind::Object: return namespace_ ? "namespace" : "dict";
    case Kind::Function: return "function";
  }
  return "?";
}

Array Value::iterate() const {
  switch (kind_) {
    case Kind::Undefined:
      return {};
    case Kind::Array:
      return *arr_;
    case Kind::String: {
      Array out;
      for (char32_t c : utf8_to_u32(s_)) out.emplace_back(u32_to_utf8(std::u32string(1, c)));
      return out;
    }
    case Kind::Object: {
      Array out;
      for (const auto& [k, v] : obj_->items) out.emplace_back(k);
      return out;
    }
    default:
      hylora::fail("'", type_name(), "' object is not iterable");
  }
}

bool operator==(const Value& a, const Value& b) {
  if (a.is_number() || a.is_bool()) {
    if (!(b.is_number() || b.is_bool())) return false;
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None:
      return true;
    case Value::Kind::String:
      return a.as_string() == b.as_string();
    case Value::Kind::Array: {
      const auto &x = a.as_array(), &y = b.as_array();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (!(x[i] == y[i])) return false;
      return true;
    }
    case Value::Kind::Object: {
      const auto &x = a.as_object().items, &y = b.as_object().items;
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x) {
        const Value* other = b.as_object().find(k);
        if (!other || !(v == *other)) return false;
      }
      return true;
    }
    default:
      return &a == &b;
  }
}

int compare(const Value& a, const Value& b) {
  if ((a.is_number() || a.is_bool()) && (b.is_number() || b.is_bool())) {
    double x = a.as_double(), y = b.as_double();
    if (!a.is_float() && !b.is_float()) return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int();
    return x < y ? -1 : x > y;
  }
  if (a.is_string() && b.is_string()) return a.as_string().compare(b.as_string()) < 0 ? -1 : a.as_string() > b.as_string();
  if (a.is_array() && b.is_array()) {
    const auto &x = a.as_array(), &y = b.as_array();
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (x[i] == y[i]) continue;
      return compare(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size();
  }
  hylora::fail("'<' not supported between instances of '", a.type_name(), "' and '", b.type_name(), "'");
}

}  // namespace hylora::text::jinja
