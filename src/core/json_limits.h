#pragma once
// Bounded JSON parsing for everything that comes from outside (request lines and HTTP bodies, config.json,
// adapter_config.json, tokenizer.json, tokenizer_config.json, safetensors headers). nlohmann's parser itself is
// iterative, but a document nested 100k deep still kills the process later (recursive dump(), conversions,
// destructors of the consumers' own trees), and a size nobody bounded is a memory bound nobody has. So the text is
// measured first: its size, then its nesting depth in one linear scan, and only then parsed. Errors are one line
// that names the input and the limit.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace hylora {

struct JsonLimits {
  std::size_t max_bytes;
  int max_depth;                       // arrays + objects open at once
  bool reject_duplicate_keys = false;  // safetensors headers: a duplicated tensor name is an error, not "last wins"
};

// The limits of each kind of input (docs/hostile_input.md lists them). Nesting of real files: config.json ≤ 4,
// tokenizer.json ≤ 6, chat requests with tool schemas ≤ ~20.
namespace json_limits {
inline constexpr int kMaxDepth = 64;
inline constexpr JsonLimits kRequest{16u << 20, kMaxDepth};           // one JSONL request line / one HTTP body
inline constexpr JsonLimits kConfig{16u << 20, kMaxDepth};            // config.json, adapter_config.json, index
inline constexpr JsonLimits kTokenizer{512u << 20, kMaxDepth};        // tokenizer.json (large vocabularies ~40 MB)
inline constexpr JsonLimits kTokenizerConfig{64u << 20, kMaxDepth};   // tokenizer_config.json (chat templates)
inline constexpr JsonLimits kSafetensorsHeader{100000000, kMaxDepth, true};  // upstream safetensors' header limit
}  // namespace json_limits

// Fails with "<what>: ..." when `text` is larger than the size limit or nests deeper than the depth limit. The scan
// is exact for valid JSON (brackets inside strings, escapes); for invalid JSON the parser reports the error.
inline void check_json_limits(std::string_view text, const JsonLimits& limits, const std::string& what) {
  if (text.size() > limits.max_bytes)
    fail(what, ": ", text.size(), " bytes is over the JSON size limit of ", limits.max_bytes, " bytes");
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limits.max_depth)
        fail(what, ": JSON nesting depth is over the limit of ", limits.max_depth, " (at byte ", i, ")");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

// check_json_limits, then parse; J is nlohmann::json or nlohmann::ordered_json.
template <typename J = nlohmann::json>
J parse_json_bounded(std::string_view text, const JsonLimits& limits, const std::string& what) {
  check_json_limits(text, limits, what);
  try {
    if (!limits.reject_duplicate_keys) return J::parse(text.begin(), text.end());
    // One set of keys per open object; the depth limit bounds the stack.
    std::vector<std::set<std::string>> open;
    typename J::parser_callback_t cb = [&](int, nlohmann::detail::parse_event_t ev, J& parsed) {
      using E = nlohmann::detail::parse_event_t;
      if (ev == E::object_start) open.emplace_back();
      else if (ev == E::object_end) open.pop_back();
      else if (ev == E::key && !open.back().insert(parsed.template get<std::string>()).second)
        fail(what, ": key \"", parsed.template get<std::string>(), "\" appears twice");
      return true;
    };
    return J::parse(text.begin(), text.end(), cb);
  } catch (const nlohmann::json::exception& e) {
    fail(what, ": not valid JSON (", e.what(), ")");
  }
}

// Reads and parses a JSON file under `limits`; the size is checked before the file is read.
template <typename J = nlohmann::json>
J read_json_file_bounded(const std::string& path, const JsonLimits& limits) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(path, ": file not found");
  if (!fs::is_regular_file(path, ec)) fail(path, ": not a regular file");
  const auto size = fs::file_size(path, ec);
  if (ec) fail(path, ": cannot read (", ec.message(), ")");
  if (size > limits.max_bytes)
    fail(path, ": ", size, " bytes is over the JSON size limit of ", limits.max_bytes, " bytes");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open file");
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return parse_json_bounded<J>(text, limits, path);
}

// A JSON number as an exact int64 in [lo, hi]; false for non-integers (64.5, 1e3), out-of-range or wrapped values.
template <typename J>
bool json_int_in_range(const J& v, int64_t lo, int64_t hi, int64_t& out) {
  if (v.is_number_unsigned()) {
    const auto u = v.template get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return false;
    out = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    out = v.template get<int64_t>();
  } else {
    return false;
  }
  return out >= lo && out <= hi;
}

}  // namespace hylora
