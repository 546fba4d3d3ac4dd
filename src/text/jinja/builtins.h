#pragma once
// Names of the filters, tests, methods and global functions the interpreter implements (the parser checks
// templates against them).
#include <set>
#include <string>

namespace hylora::text::jinja {

const std::set<std::string>& supported_filters();
const std::set<std::string>& supported_tests();
const std::set<std::string>& supported_methods();
const std::set<std::string>& supported_globals();

}  // namespace hylora::text::jinja

#include "text/jinja/value.h"

namespace hylora::text::jinja {

// Python-semantics implementations; all throw hylora::Error with the offending name on misuse.
Value apply_filter(const std::string& name, const Value& v, CallArgs& args);
bool apply_test(const std::string& name, const Value& v, CallArgs& args);
Value call_method(const Value& obj, const std::string& name, CallArgs& args);
Value make_global(const std::string& name);  // raise_exception, namespace, range, dict, strftime_now

// Python len(), str slicing/indexing by code point, and the binary operators of expressions.
int64_t python_len(const Value& v);
Value get_item(const Value& obj, const Value& key);
Value get_attr(const Value& obj, const std::string& name);
Value slice(const Value& v, const Value& start, const Value& stop, const Value& step);
Value binary_op(const std::string& op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);

}  // namespace hylora::text::jinja
