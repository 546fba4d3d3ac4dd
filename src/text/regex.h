#pragma once
// A compiled PCRE2 regular expression (UTF + UCP, JIT-compiled) for the Split pre-tokenizers of tokenizer.json.
// HF `tokenizers` uses Oniguruma; PCRE2 accepts the same syntax for these patterns (\p{..}, (?i:..), (?!..)).
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hylora::text {

class Regex {
 public:
  // `literal` compiles `pattern` as a plain string (tokenizer.json's {"String": ...} patterns).
  Regex(const std::string& pattern, bool literal, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Byte ranges [begin, end) of all non-overlapping, non-empty matches in `text` (valid UTF-8), left to right.
  std::vector<std::pair<std::size_t, std::size_t>> find_all(std::string_view text) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Oniguruma's \s also matches U+0085 (NEXT LINE), PCRE2's does not: rewrite \s so both agree.
std::string oniguruma_compatible(const std::string& pattern);

}  // namespace hylora::text
