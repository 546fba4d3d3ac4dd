#pragma once
// Parses template tokens into a syntax tree. Every construct outside the supported subset (unknown statements,
// filters, tests, methods or functions) is rejected here, so a template fails when it is loaded instead of
// rendering a wrong prompt.
#include <string>

#include "text/jinja/ast.h"

namespace hylora::text::jinja {

Body parse_template(const std::string& source);

}  // namespace hylora::text::jinja
