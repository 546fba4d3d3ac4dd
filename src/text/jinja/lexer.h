#pragma once
// Splits template source into text and tag tokens, applying transformers' environment settings
// (trim_blocks=True, lstrip_blocks=True) and the -/+ whitespace-control markers; tag contents are tokenized
// into names, literals and operators.
#include <string>
#include <vector>

namespace hylora::text::jinja {

struct Token {
  enum class Kind { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End };
  Kind kind;
  std::string text;  // text, name, operator, or the unescaped string literal / number spelling
  int line;
};

std::vector<Token> tokenize_template(const std::string& source);

}  // namespace hylora::text::jinja
