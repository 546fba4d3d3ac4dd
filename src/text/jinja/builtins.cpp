// Filters, tests, methods and global functions of the supported subset, with Python/Jinja2 semantics
// (strings index and measure by code point, negative indices count from the end, / is true division).
#include "text/jinja/builtins.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>

#include "core/error.h"
#include "text/utf8.h"

namespace hylora::text::jinja {

const std::set<std::string>& supported_filters() {
  static const std::set<std::string> s{
      "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
      "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject",
      "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum",
      "title", "tojson", "trim", "unique", "upper", "wordcount"};
  return s;
}
const std::set<std::string>& supported_tests() {
  static const std::set<std::string> s{
      "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "even", "false", "float", "ge", "gt",
      "in", "integer", "iterable", "le", "lower", "lt", "mapping", "ne", "none", "number", "odd", "sameas",
      "sequence", "string", "true", "undefined", "upper", "==", "!="};
  return s;
}
const std::set<std::string>& supported_methods() {
  static const std::set<std::string> s{
      "capitalize", "count", "endswith", "find", "get", "index", "isalnum", "isalpha", "isdigit", "islower",
      "isspace", "isupper", "items", "join", "keys", "lower", "lstrip", "replace", "rfind", "rsplit", "rstrip",
      "split", "splitlines", "startswith", "strip", "title", "upper", "values"};
  return s;
}
const std::set<std::string>& supported_globals() {
  static const std::set<std::string> s{"raise_exception", "namespace", "range", "dict", "strftime_now"};
  return s;
}

namespace {

// Positional argument `i` or keyword `name`, else `def`.
Value arg(CallArgs& a, std::size_t i, const char* name, Value def = Value()) {
  for (auto& [k, v] : a.keyword)
    if (k == name) return v;
  if (i < a.positional.size()) return a.positional[i];
  return def;
}

const std::string& need_string(const Value& v, const std::string& what) {
  if (!v.is_string()) hylora::fail(what, ": expected a string, found ", v.type_name());
  return v.as_string();
}

bool is_py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// str.strip/lstrip/rstrip(chars=None)
std::string strip(const std::string& s, const Value& chars, bool left, bool right) {
  std::u32string u = utf8_to_u32(s);
  std::u32string set = chars.is_string() ? utf8_to_u32(chars.as_string()) : std::u32string();
  auto strip_it = [&](char32_t c) { return chars.is_string() ? set.find(c) != std::u32string::npos : is_py_space(c); };
  std::size_t b = 0, e = u.size();
  if (left)
    while (b < e && strip_it(u[b])) ++b;
  if (right)
    while (e > b && strip_it(u[e - 1])) --e;
  return u32_to_utf8(u.substr(b, e - b));
}

std::string map_ascii(std::string s, int (*f)(int)) {
  // Case mapping of ASCII letters; other scripts keep their case (enough for role names and keys).
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(f(c));
  return s;
}

std::string title_case(const std::string& s) {
  std::string out = s;
  bool prev_alpha = false;
  for (char& c : out) {
    bool alpha = std::isalpha(static_cast<unsigned char>(c));
    if (alpha) c = static_cast<char>(prev_alpha ? std::tolower(c) : std::toupper(c));
    prev_alpha = alpha;
  }
  return out;
}

Value split(const std::string& s, const Value& sep, int64_t maxsplit, bool from_right) {
  Array out;
  if (sep.is_none() || sep.is_undefined()) {  // runs of whitespace, no empty strings
    std::u32string u = utf8_to_u32(s);
    std::vector<std::u32string> words;
    std::size_t i = 0;
    while (i < u.size()) {
      while (i < u.size() && is_py_space(u[i])) ++i;
      if (i >= u.size()) break;
      std::size_t j = i;
      while (j < u.size() && !is_py_space(u[j])) ++j;
      words.push_back(u.substr(i, j - i));
      i = j;
    }
    if (maxsplit >= 0 && static_cast<int64_t>(words.size()) > maxsplit + 1)
      hylora::fail("split(): maxsplit without a separator is not supported");
    for (auto& w : words) out.emplace_back(u32_to_utf8(w));
    return Value::array(std::move(out));
  }
  const std::string& d = need_string(sep, "split() separator");
  if (d.empty()) hylora::fail("split(): empty separator");
  std::vector<std::string> parts;
  if (!from_right) {
    std::size_t start = 0;
    int64_t n = 0;
    while (maxsplit < 0 || n < maxsplit) {
      std::size_t p = s.find(d, start);
      if (p == std::string::npos) break;
      parts.push_back(s.substr(start, p - start));
      start = p + d.size();
      ++n;
    }
    parts.push_back(s.substr(start));
  } else {
    std::size_t end = s.size();
    int64_t n = 0;
    std::vector<std::string> rev;
    while (maxsplit < 0 || n < maxsplit) {
      if (end < d.size()) break;
      std::size_t p = s.rfind(d, end - d.size());
      if (p == std::string::npos) break;
      rev.push_back(s.substr(p + d.size(), end - p - d.size()));
      end = p;
      ++n;
    }
    rev.push_back(s.substr(0, end));
    parts.assign(rev.rbegin(), rev.rend());
  }
  for (auto& p : parts) out.emplace_back(std::move(p));
  return Value::array(std::move(out));
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` between characters
    std::u32string u = utf8_to_u32(s);
    int64_t n = 0;
    for (std::size_t i = 0; i <= u.size(); ++i) {
      if (count < 0 || n < count) {
        out += to;
        ++n;
      }
      check_string_size(out.size(), "replace");
      if (i < u.size()) out += u32_to_utf8(u.substr(i, 1));
    }
    return out;
  }
  std::size_t start = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    std::size_t p = s.find(from, start);
    if (p == std::string::npos) break;
    out.append(s, start, p - start);
    out += to;
    check_string_size(out.size(), "replace");
    start = p + from.size();
    ++n;
  }
  out.append(s, start);
  return out;
}

// Byte offset -> code point index (for find/rfind results).
int64_t cp_index(const std::string& s, std::size_t byte) {
  return static_cast<int64_t>(utf8_to_u32(s.substr(0, byte)).size());
}

Value attribute_path(const Value& v, const std::string& path) {
  Value cur = v;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    int64_t index = 0;
    const bool in_range = digits && std::from_chars(part.data(), part.data() + part.size(), index).ec == std::errc();
    cur = in_range && cur.is_array() ? get_item(cur, Value(index)) : get_attr(cur, part);
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value select_like(const std::string& name, const Value& v, CallArgs& args) {
  bool by_attr = name == "selectattr" || name == "rejectattr";
  bool keep_when = name == "select" || name == "selectattr";
  std::size_t first = 0;
  std::string attr;
  if (by_attr) attr = need_string(arg(args, first++, "attribute"), name + " attribute");
  Value test = arg(args, first, "test");
  CallArgs test_args;
  for (std::size_t i = first + 1; i < args.positional.size(); ++i) test_args.positional.push_back(args.positional[i]);
  Array out;
  for (const auto& item : v.iterate()) {
    Value x = by_attr ? attribute_path(item, attr) : item;
    bool ok = test.is_undefined() ? x.truthy() : apply_test(need_string(test, name + " test"), x, test_args);
    if (ok == keep_when) out.push_back(item);
  }
  return Value::array(std::move(out));
}

}  // namespace

int64_t python_len(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return 0;
    case Value::Kind::String: return static_cast<int64_t>(utf8_to_u32(v.as_string()).size());
    case Value::Kind::Array: return static_cast<int64_t>(v.as_array().size());
    case Value::Kind::Object: return static_cast<int64_t>(v.as_object().items.size());
    default: hylora::fail("object of type '", v.type_name(), "' has no len()");
  }
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined())
    hylora::fail("'", obj.undefined_name().empty() ? "value" : obj.undefined_name(), "' is undefined (reading .", name, ")");
  if (obj.is_object()) {
    if (const Value* v = obj.as_object().find(name)) return *v;
  }
  return Value::undefined(name);
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined())
    hylora::fail("'", obj.undefined_name().empty() ? "value" : obj.undefined_name(), "' is undefined (indexing it)");
  if (obj.is_object()) {
    if (key.is_string())
      if (const Value* v = obj.as_object().find(key.as_string())) return *v;
    return Value::undefined(key.is_string() ? key.as_string() : key.str());
  }
  if ((obj.is_array() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t n = python_len(obj), i = key.as_int();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined("[" + key.str() + "]");
    if (obj.is_array()) return obj.as_array()[i];
    return Value(u32_to_utf8(utf8_to_u32(obj.as_string()).substr(i, 1)));
  }
  if (key.is_string()) return get_attr(obj, key.as_string());
  return Value::undefined();
}

Value slice(const Value& v, const Value& start_v, const Value& stop_v, const Value& step_v) {
  int64_t step = step_v.is_undefined() || step_v.is_none() ? 1 : step_v.as_int();
  if (step == 0) hylora::fail("slice step cannot be zero");
  int64_t n = python_len(v);
  auto clamp = [&](const Value& x, int64_t def) {
    if (x.is_undefined() || x.is_none()) return def;
    int64_t i = x.as_int();
    if (i < 0) i += n;
    if (step > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  int64_t b = clamp(start_v, step > 0 ? 0 : n - 1), e = clamp(stop_v, step > 0 ? n : -1);
  std::vector<int64_t> idx;
  for (int64_t i = b; step > 0 ? i < e : i > e; i += step) idx.push_back(i);
  if (v.is_string()) {
    std::u32string u = utf8_to_u32(v.as_string()), out;
    for (auto i : idx) out.push_back(u[i]);
    return Value(u32_to_utf8(out));
  }
  if (!v.is_array()) hylora::fail("cannot slice a '", v.type_name(), "'");
  Array out;
  for (auto i : idx) out.push_back(v.as_array()[i]);
  return Value::array(std::move(out));
}

bool contains(const Value& c, const Value& item) {
  if (c.is_string()) return c.as_string().find(need_string(item, "'in <string>' left operand")) != std::string::npos;
  if (c.is_array()) {
    for (const auto& x : c.as_array())
      if (x == item) return true;
    return false;
  }
  if (c.is_object()) return item.is_string() && c.as_object().find(item.as_string());
  if (c.is_undefined()) return false;
  hylora::fail("argument of type '", c.type_name(), "' is not iterable");
}

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") return Value(a.str() + b.str());
  if (op == "==") return Value(a == b);
  if (op == "!=") return Value(!(a == b));
  if (op == "<") return Value(compare(a, b) < 0);
  if (op == ">") return Value(compare(a, b) > 0);
  if (op == "<=") return Value(compare(a, b) <= 0);
  if (op == ">=") return Value(compare(a, b) >= 0);
  if (op == "in") return Value(contains(b, a));
  if (op == "not in") return Value(!contains(b, a));
  bool nums = (a.is_number() || a.is_bool()) && (b.is_number() || b.is_bool());
  if (op == "+") {
    if (a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
    if (a.is_array() && b.is_array()) {
      Array out = a.as_array();
      out.insert(out.end(), b.as_array().begin(), b.as_array().end());
      return Value::array(std::move(out));
    }
  }
  if (op == "*" && ((a.is_string() && b.is_int()) || (a.is_int() && b.is_string()))) {
    const Value& s = a.is_string() ? a : b;
    const int64_t n = (a.is_int() ? a : b).as_int();
    if (n > 0 && !s.as_string().empty())
      check_string_size(n > static_cast<int64_t>(limits::kMaxString) ? limits::kMaxString + 1 : s.as_string().size() * n,
                        "string repetition");
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += s.as_string();
    return Value(out);
  }
  if (!nums)
    hylora::fail("unsupported operand types for ", op, ": '", a.type_name(), "' and '", b.type_name(), "'");
  bool ints = !a.is_float() && !b.is_float();
  // Python integers do not overflow; ours are 64-bit, so an overflow is an error instead of a wrapped number.
  const auto overflow = [&]() -> Value {
    hylora::fail("integer overflow in ", a.as_int(), " ", op, " ", b.as_int(), " (template integers are 64-bit)");
  };
  int64_t r = 0;
  if (op == "+") {
    if (!ints) return Value(a.as_double() + b.as_double());
    return __builtin_add_overflow(a.as_int(), b.as_int(), &r) ? overflow() : Value(r);
  }
  if (op == "-") {
    if (!ints) return Value(a.as_double() - b.as_double());
    return __builtin_sub_overflow(a.as_int(), b.as_int(), &r) ? overflow() : Value(r);
  }
  if (op == "*") {
    if (!ints) return Value(a.as_double() * b.as_double());
    return __builtin_mul_overflow(a.as_int(), b.as_int(), &r) ? overflow() : Value(r);
  }
  if (op == "/") {
    if (b.as_double() == 0) hylora::fail("division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (b.as_double() == 0) hylora::fail("integer division or modulo by zero");
    if (ints) {
      // INT64_MIN // -1 does not fit (and traps on x86); INT64_MIN % -1 is 0.
      if (b.as_int() == -1) {
        if (op == "%") return Value(int64_t{0});
        if (a.as_int() == INT64_MIN) return overflow();
      }
      int64_t q = a.as_int() / b.as_int(), r = a.as_int() % b.as_int();
      if (r != 0 && ((r < 0) != (b.as_int() < 0))) {
        --q;
        r += b.as_int();
      }
      return op == "//" ? Value(q) : Value(r);
    }
    double q = std::floor(a.as_double() / b.as_double());
    return op == "//" ? Value(q) : Value(a.as_double() - q * b.as_double());
  }
  if (op == "**") {
    if (ints && b.as_int() >= 0) {
      // Square-and-multiply: 64 steps at most, each checked (a loop of b multiplications would run 2^63 times).
      int64_t result = 1, base = a.as_int();
      for (int64_t e = b.as_int(); e > 0; e >>= 1) {
        if ((e & 1) && __builtin_mul_overflow(result, base, &result)) return overflow();
        if (e > 1 && __builtin_mul_overflow(base, base, &base)) return overflow();
      }
      return Value(result);
    }
    return Value(std::pow(a.as_double(), b.as_double()));
  }
  hylora::fail("unknown operator ", op);
}

Value apply_filter(const std::string& name, const Value& v, CallArgs& args) {
  if (name == "safe") return v;
  if (name == "string") return Value(v.str());
  if (name == "trim") return Value(strip(v.str(), arg(args, 0, "chars"), true, true));
  if (name == "lower") return Value(map_ascii(v.str(), ::tolower));
  if (name == "upper") return Value(map_ascii(v.str(), ::toupper));
  if (name == "title") return Value(title_case(v.str()));
  if (name == "capitalize") {
    std::string s = map_ascii(v.str(), ::tolower);
    if (!s.empty()) s[0] = static_cast<char>(std::toupper(s[0]));
    return Value(s);
  }
  if (name == "e" || name == "escape") return Value(html_escape(v.str()));
  if (name == "length" || name == "count") return Value(python_len(v));
  if (name == "wordcount") return Value(static_cast<int64_t>(split(v.str(), Value::none(), -1, false).as_array().size()));
  if (name == "tojson") {
    Value indent = arg(args, 0, "indent");
    if (indent.is_int() && (indent.as_int() < 0 || indent.as_int() > 64))
      hylora::fail("tojson: indent ", indent.as_int(), " is outside [0, 64]");
    return Value(v.to_json(indent.is_int() ? static_cast<int>(indent.as_int()) : -1));
  }
  if (name == "default" || name == "d") {
    bool boolean = arg(args, 1, "boolean", Value(false)).truthy();
    if (v.is_undefined() || (boolean && !v.truthy())) return arg(args, 0, "default_value", Value(""));
    return v;
  }
  if (name == "replace") {
    Value count = arg(args, 2, "count");
    return Value(replace_all(v.str(), need_string(arg(args, 0, "old"), "replace old"),
                             need_string(arg(args, 1, "new"), "replace new"), count.is_int() ? count.as_int() : -1));
  }
  if (name == "join") {
    Value attr = arg(args, 1, "attribute");
    std::string sep = arg(args, 0, "d", Value("")).str(), out;
    bool first = true;
    for (const auto& x : v.iterate()) {
      out += (first ? "" : sep) + (attr.is_undefined() ? x : attribute_path(x, attr.str())).str();
      check_string_size(out.size(), "join");
      first = false;
    }
    return Value(out);
  }
  if (name == "first" || name == "last") {
    Array items = v.iterate();
    if (items.empty()) return Value::undefined(name);
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return Value::array(v.iterate());
  if (name == "reverse") {
    if (v.is_string()) return slice(v, Value(), Value(), Value(static_cast<int64_t>(-1)));
    Array items = v.iterate();
    std::reverse(items.begin(), items.end());
    return Value::array(std::move(items));
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::array();
    if (!v.is_object()) hylora::fail("items filter: expected a mapping, found ", v.type_name());
    Array out;
    for (const auto& [k, x] : v.as_object().items) out.push_back(Value::array({Value(k), x}));
    return Value::array(std::move(out));
  }
  if (name == "dictsort") {
    if (!v.is_object()) hylora::fail("dictsort filter: expected a mapping, found ", v.type_name());
    Array out;
    for (const auto& [k, x] : v.as_object().items) out.push_back(Value::array({Value(k), x}));
    bool by_value = arg(args, 1, "by", Value("key")).str() == "value";
    bool reverse = arg(args, 2, "reverse", Value(false)).truthy();
    std::stable_sort(out.begin(), out.end(), [&](const Value& a, const Value& b) {
      int c = compare(a.as_array()[by_value], b.as_array()[by_value]);
      return reverse ? c > 0 : c < 0;
    });
    return Value::array(std::move(out));
  }
  if (name == "sort") {
    Array items = v.iterate();
    bool reverse = arg(args, 0, "reverse", Value(false)).truthy();
    Value attr = arg(args, 2, "attribute");
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
      int c = attr.is_undefined() ? compare(a, b) : compare(attribute_path(a, attr.str()), attribute_path(b, attr.str()));
      return reverse ? c > 0 : c < 0;
    });
    return Value::array(std::move(items));
  }
  if (name == "unique") {
    Array out;
    for (const auto& x : v.iterate())
      if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
    return Value::array(std::move(out));
  }
  if (name == "min" || name == "max" || name == "sum") {
    Array items = v.iterate();
    if (name == "sum") {
      Value total = arg(args, 1, "start", Value(static_cast<int64_t>(0)));
      for (const auto& x : items) total = binary_op("+", total, x);
      return total;
    }
    if (items.empty()) return Value::undefined(name);
    Value best = items[0];
    for (const auto& x : items)
      if ((name == "min" && compare(x, best) < 0) || (name == "max" && compare(x, best) > 0)) best = x;
    return best;
  }
  if (name == "map") {
    Value attr = arg(args, 99, "attribute");
    Array out;
    if (!attr.is_undefined()) {
      for (const auto& x : v.iterate()) out.push_back(attribute_path(x, attr.str()));
    } else {
      std::string f = need_string(arg(args, 0, "filter"), "map filter name");
      if (!supported_filters().count(f)) hylora::fail("map: unsupported filter '", f, "'");
      CallArgs rest;
      for (std::size_t i = 1; i < args.positional.size(); ++i) rest.positional.push_back(args.positional[i]);
      for (const auto& x : v.iterate()) out.push_back(apply_filter(f, x, rest));
    }
    return Value::array(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr")
    return select_like(name, v, args);
  if (name == "attr") return get_attr(v, need_string(arg(args, 0, "name"), "attr name"));
  if (name == "int") {
    if (v.is_int() || v.is_bool()) return Value(v.as_int());
    if (v.is_float()) {
      const double d = std::trunc(v.as_double());
      if (!(d >= -9.2233720368547758e18 && d < 9.2233720368547758e18))
        hylora::fail("int: ", python_float_repr(v.as_double()), " is outside the 64-bit range of template integers");
      return Value(static_cast<int64_t>(d));
    }
    try {
      return Value(static_cast<int64_t>(std::stoll(strip(v.str(), Value(), true, true))));
    } catch (const std::exception&) {
      return arg(args, 0, "default", Value(static_cast<int64_t>(0)));
    }
  }
  if (name == "float") {
    if (v.is_number() || v.is_bool()) return Value(v.as_double());
    try {
      return Value(std::stod(v.str()));
    } catch (const std::exception&) {
      return arg(args, 0, "default", Value(0.0));
    }
  }
  if (name == "abs") {
    if (v.is_int() && v.as_int() == INT64_MIN) hylora::fail("integer overflow in abs(", v.as_int(), ")");
    return v.is_int() ? Value(v.as_int() < 0 ? -v.as_int() : v.as_int()) : Value(std::fabs(v.as_double()));
  }
  if (name == "round") {
    int64_t precision = arg(args, 0, "precision", Value(static_cast<int64_t>(0))).as_int();
    double scale = std::pow(10.0, static_cast<double>(precision));
    return Value(std::round(v.as_double() * scale) / scale);
  }
  if (name == "indent") {
    const Value width = arg(args, 0, "width", Value(static_cast<int64_t>(4)));
    if (!width.is_string()) check_string_size(static_cast<std::size_t>(std::max<int64_t>(0, width.as_int())), "indent");
    std::string pad = width.is_string() ? width.as_string()
                                        : std::string(static_cast<std::size_t>(std::max<int64_t>(0, width.as_int())), ' ');
    bool first = arg(args, 1, "first", Value(false)).truthy(), blank = arg(args, 2, "blank", Value(false)).truthy();
    std::string s = v.str(), out;
    std::size_t start = 0;
    bool is_first = true;
    while (true) {
      std::size_t nl = s.find('\n', start);
      std::string line = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      if ((!is_first || first) && (blank || !line.empty())) out += pad;
      out += line;
      if (nl == std::string::npos) break;
      out += '\n';
      start = nl + 1;
      is_first = false;
    }
    return Value(out);
  }
  hylora::fail("unsupported filter '", name, "'");
}

bool apply_test(const std::string& name, const Value& v, CallArgs& args) {
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "mapping") return v.is_object();
  if (name == "sequence") return v.is_array() || v.is_string() || v.is_object();
  if (name == "iterable") return v.is_array() || v.is_string() || v.is_object();
  if (name == "callable") return v.is_function();
  if (name == "lower") return v.is_string() && map_ascii(v.as_string(), ::tolower) == v.as_string();
  if (name == "upper") return v.is_string() && map_ascii(v.as_string(), ::toupper) == v.as_string();
  if (name == "odd" || name == "even") {
    if (!v.is_int()) hylora::fail("test '", name, "': expected an integer, found ", v.type_name());
    return (v.as_int() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    int64_t d = arg(args, 0, "num").as_int();
    return d != 0 && v.as_int() % d == 0;
  }
  Value other = arg(args, 0, "other");
  if (name == "eq" || name == "equalto" || name == "==") return v == other;
  if (name == "ne" || name == "!=") return !(v == other);
  if (name == "sameas") return v == other && v.kind() == other.kind();
  if (name == "lt") return compare(v, other) < 0;
  if (name == "le") return compare(v, other) <= 0;
  if (name == "gt") return compare(v, other) > 0;
  if (name == "ge") return compare(v, other) >= 0;
  if (name == "in") return contains(arg(args, 0, "seq"), v);
  hylora::fail("unsupported test '", name, "'");
}

Value call_method(const Value& obj, const std::string& name, CallArgs& args) {
  if (obj.is_string()) {
    const std::string& s = obj.as_string();
    if (name == "startswith" || name == "endswith") {
      Value p = arg(args, 0, "prefix");
      Array options = p.is_array() ? p.as_array() : Array{p};
      for (const auto& o : options) {
        const std::string& x = need_string(o, name + "() argument");
        bool hit = name == "startswith" ? s.compare(0, x.size(), x) == 0
                                        : s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
        if (hit) return Value(true);
      }
      return Value(false);
    }
    if (name == "strip") return Value(strip(s, arg(args, 0, "chars"), true, true));
    if (name == "lstrip") return Value(strip(s, arg(args, 0, "chars"), true, false));
    if (name == "rstrip") return Value(strip(s, arg(args, 0, "chars"), false, true));
    if (name == "split" || name == "rsplit")
      return split(s, arg(args, 0, "sep", Value::none()), arg(args, 1, "maxsplit", Value(static_cast<int64_t>(-1))).as_int(),
                   name == "rsplit");
    if (name == "splitlines") {
      Array out;
      std::size_t start = 0;
      while (start < s.size()) {
        std::size_t nl = s.find_first_of("\r\n", start);
        if (nl == std::string::npos) nl = s.size();
        out.emplace_back(s.substr(start, nl - start));
        start = nl + ((nl + 1 < s.size() && s[nl] == '\r' && s[nl + 1] == '\n') ? 2 : 1);
      }
      return Value::array(std::move(out));
    }
    if (name == "lower") return Value(map_ascii(s, ::tolower));
    if (name == "upper") return Value(map_ascii(s, ::toupper));
    if (name == "title") return Value(title_case(s));
    if (name == "capitalize") return apply_filter("capitalize", obj, args);
    if (name == "replace") {
      Value count = arg(args, 2, "count");
      return Value(replace_all(s, need_string(arg(args, 0, "old"), "replace() old"),
                               need_string(arg(args, 1, "new"), "replace() new"), count.is_int() ? count.as_int() : -1));
    }
    if (name == "find" || name == "rfind" || name == "index") {
      const std::string x = need_string(arg(args, 0, "sub"), name + "() argument");  // a copy: arg() returns a temporary
      std::size_t p = name == "rfind" ? s.rfind(x) : s.find(x);
      if (p == std::string::npos) {
        if (name == "index") hylora::fail("index(): substring not found");
        return Value(static_cast<int64_t>(-1));
      }
      return Value(cp_index(s, p));
    }
    if (name == "count") {
      const std::string x = need_string(arg(args, 0, "sub"), "count() argument");
      if (x.empty()) return Value(python_len(obj) + 1);
      int64_t n = 0;
      for (std::size_t p = s.find(x); p != std::string::npos; p = s.find(x, p + x.size())) ++n;
      return Value(n);
    }
    if (name == "join") {
      std::string out;
      bool first = true;
      for (const auto& x : arg(args, 0, "iterable").iterate()) {
        out += (first ? "" : s) + need_string(x, "join() item");
        check_string_size(out.size(), "join()");
        first = false;
      }
      return Value(out);
    }
    auto all_chars = [&](auto pred) {
      if (s.empty()) return Value(false);
      for (char32_t c : utf8_to_u32(s))
        if (!pred(c)) return Value(false);
      return Value(true);
    };
    if (name == "isdigit") return all_chars([](char32_t c) { return c >= '0' && c <= '9'; });
    if (name == "isalpha") return all_chars([](char32_t c) { return c < 0x80 ? std::isalpha(static_cast<int>(c)) != 0 : true; });
    if (name == "isalnum") return all_chars([](char32_t c) { return c < 0x80 ? std::isalnum(static_cast<int>(c)) != 0 : true; });
    if (name == "isspace") return all_chars(is_py_space);
    if (name == "islower") return Value(map_ascii(s, ::tolower) == s && map_ascii(s, ::toupper) != s);
    if (name == "isupper") return Value(map_ascii(s, ::toupper) == s && map_ascii(s, ::tolower) != s);
  }
  if (obj.is_object()) {
    const auto& o = obj.as_object();
    if (name == "items") return apply_filter("items", obj, args);
    if (name == "keys") return Value::array(obj.iterate());
    if (name == "values") {
      Array out;
      for (const auto& [k, v] : o.items) out.push_back(v);
      return Value::array(std::move(out));
    }
    if (name == "get") {
      const Value* v = o.find(arg(args, 0, "key").str());
      return v ? *v : arg(args, 1, "default", Value::none());
    }
  }
  if (obj.is_array()) {
    if (name == "index") {
      Value x = arg(args, 0, "value");
      const auto& a = obj.as_array();
      for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i] == x) return Value(static_cast<int64_t>(i));
      hylora::fail("list.index(): value not in list");
    }
    if (name == "count") {
      int64_t n = 0;
      for (const auto& x : obj.as_array()) n += x == arg(args, 0, "value");
      return Value(n);
    }
  }
  if (obj.is_undefined())
    hylora::fail("'", obj.undefined_name().empty() ? "value" : obj.undefined_name(), "' is undefined (calling .", name, "())");
  hylora::fail("'", obj.type_name(), "' object has no method '", name, "'");
}

Value make_global(const std::string& name) {
  if (name == "raise_exception")
    return Value::function([](CallArgs& a) -> Value {
      hylora::fail("raise_exception: ", arg(a, 0, "message").str());
    });
  if (name == "namespace")
    return Value::function([](CallArgs& a) {
      Object o;
      for (const auto& p : a.positional)
        if (p.is_object())
          for (const auto& [k, v] : p.as_object().items) o.set(k, v);
      for (auto& [k, v] : a.keyword) o.set(k, v);
      return Value::object(std::move(o), true);
    });
  if (name == "dict")
    return Value::function([](CallArgs& a) {
      Object o;
      for (auto& [k, v] : a.keyword) o.set(k, v);
      return Value::object(std::move(o));
    });
  if (name == "range")
    return Value::function([](CallArgs& a) {
      int64_t start = 0, stop, step = 1;
      for (const auto& p : a.positional)
        if (!p.is_int() && !p.is_bool()) hylora::fail("range() expects integers, found '", p.type_name(), "'");
      if (a.positional.size() == 1) {
        stop = a.positional[0].as_int();
      } else if (a.positional.size() >= 2) {
        start = a.positional[0].as_int();
        stop = a.positional[1].as_int();
        if (a.positional.size() >= 3) step = a.positional[2].as_int();
      } else {
        hylora::fail("range() expects 1 to 3 integer arguments");
      }
      if (step == 0) hylora::fail("range() step must not be zero");
      // Item count without overflow: as transformers' sandbox, more than 100,000 items is refused.
      const __int128 span = step > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
      const __int128 astep = step > 0 ? step : -static_cast<__int128>(step);
      const __int128 count = span <= 0 ? 0 : (span + astep - 1) / astep;
      if (count > limits::kMaxRange)
        hylora::fail("range() of ", static_cast<int64_t>(count), " items is over the limit of ", limits::kMaxRange);
      Array out;
      for (int64_t k = 0; k < static_cast<int64_t>(count); ++k) out.emplace_back(static_cast<int64_t>(start + k * step));
      return Value::array(std::move(out));
    });
  if (name == "strftime_now")
    return Value::function([](CallArgs& a) {
      std::time_t t = std::time(nullptr);
      std::tm tm{};
      localtime_r(&t, &tm);
      char buf[256];
      std::size_t n = std::strftime(buf, sizeof buf, need_string(arg(a, 0, "format"), "strftime_now format").c_str(), &tm);
      return Value(std::string(buf, n));
    });
  hylora::fail("unknown global function '", name, "'");
}

}  // namespace hylora::text::jinja
