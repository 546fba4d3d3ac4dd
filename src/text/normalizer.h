#pragma once
// tokenizer.json "normalizer": Unicode normal forms (via utf8proc) and Sequence of them; null means none.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hylora::text {

class Normalizer {
 public:
  // Throws hylora::Error naming the unsupported "type" (the load fails rather than tokenizing wrongly).
  static std::unique_ptr<Normalizer> from_json(const nlohmann::json& j);
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string text) const = 0;
};

}  // namespace hylora::text
