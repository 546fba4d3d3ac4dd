#pragma once
// tokenizer.json "pre_tokenizer": splits normalized text into words that BPE encodes independently.
// Supported: Split (regex or string, every behavior, invert), ByteLevel (add_prefix_space, use_regex),
// Digits, and Sequence of these; anything else fails at load time.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hylora::text {

class PreTokenizer {
 public:
  static std::unique_ptr<PreTokenizer> from_json(const nlohmann::json& j);
  virtual ~PreTokenizer() = default;
  // Replaces every piece by the pieces it splits into (pieces never become empty).
  virtual void split(std::vector<std::string>& pieces) const = 0;
};

}  // namespace hylora::text
