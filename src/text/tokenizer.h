#pragma once
// A Hugging Face tokenizer.json (BPE model) for encoding text to ids and decoding ids to text.
// Encoding adds no special tokens of its own (HF add_special_tokens=False); special tokens written in the text
// are recognised. Input that is not valid UTF-8 is first decoded lossily (U+FFFD per maximal invalid subpart,
// as Python's errors="replace"), since HF only ever sees text that is already a (valid) str.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "text/added_vocabulary.h"
#include "text/bpe_model.h"
#include "text/normalizer.h"
#include "text/pre_tokenizer.h"

namespace hylora::text {

class Tokenizer {
 public:
  // `split_special_tokens` comes from tokenizer_config.json (default false: special tokens in text match).
  Tokenizer(const nlohmann::json& tokenizer_json, bool split_special_tokens = false);
  // Loads DIR/tokenizer.json, and DIR/tokenizer_config.json's split_special_tokens when that file exists.
  static std::unique_ptr<Tokenizer> from_directory(const std::string& dir);

  std::vector<int32_t> encode(std::string_view text) const;

  // Text of `ids`; throws hylora::Error for an id that is neither in the vocabulary nor an added token.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // The bytes one token contributes to decoded text (may be part of a UTF-8 sequence); empty for a special
  // token when `skip_special_tokens`.
  std::string token_bytes(int32_t id, bool skip_special_tokens = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::size_t vocab_size() const;  // ids 0..vocab_size()-1, added tokens included
  const AddedVocabulary& added_vocabulary() const { return added_; }

 private:
  void encode_text(std::string text, std::vector<int32_t>& out) const;

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  AddedVocabulary added_;
  bool byte_level_decoder_ = false;
};

// Decodes ids one at a time (streaming generation). Each push returns the text that became complete; bytes of
// a character still missing its continuation are held back, so no output ever contains a broken UTF-8
// sequence, and the concatenation of all pushes and finish() equals Tokenizer::decode of all ids.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special_tokens = false)
      : tok_(tok), skip_special_(skip_special_tokens) {}
  std::string push(int32_t id);
  std::string finish();  // what is left, with an unfinished sequence replaced by U+FFFD

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace hylora::text
