#pragma once
// tokenizer.json "added_tokens": tokens matched in the text before normalization/BPE (special tokens such as
// <|im_start|> and plain added ones such as <think>), with HF's lstrip/rstrip/single_word/normalized flags.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace hylora::text {

struct AddedToken {
  int32_t id;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// A run of text to tokenize normally, or one added token.
struct Segment {
  std::string text;
  std::optional<int32_t> token;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // `split_special_tokens`: special tokens are not matched (tokenizer_config.json's option of that name).
  AddedVocabulary(const nlohmann::json& added_tokens, bool split_special_tokens);

  // Splits `text` at the added tokens whose `normalized` flag equals `normalized`, leftmost-longest like HF's
  // Aho-Corasick matcher. Text segments may be empty only when the input is.
  std::vector<Segment> split(std::string_view text, bool normalized) const;

  const AddedToken* by_id(int32_t id) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, std::size_t> by_id_;
  // first byte -> indices of matchable tokens starting with it, longest first (per normalized flag)
  std::vector<std::size_t> by_first_byte_[2][256];
};

}  // namespace hylora::text
