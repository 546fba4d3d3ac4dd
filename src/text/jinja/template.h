#pragma once
// A parsed Jinja template (the subset chat templates use) that renders with transformers' semantics:
// trim_blocks, lstrip_blocks, Python-like values, loop controls, raise_exception, tojson as in HF.
#include <string>
#include <vector>

#include "text/jinja/ast.h"
#include "text/jinja/value.h"

namespace hylora::text::jinja {

class Template {
 public:
  // Throws hylora::Error (with a line number) for syntax errors and unsupported constructs.
  explicit Template(const std::string& source);
  // Renders with `variables` as the global scope (plus the global functions); throws on runtime errors.
  std::string render(const Object& variables) const;

 private:
  Body body_;
};

}  // namespace hylora::text::jinja
