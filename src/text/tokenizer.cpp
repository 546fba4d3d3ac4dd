#include "text/tokenizer.h"

#include <fstream>

#include "core/error.h"
#include "core/json_limits.h"
#include "text/byte_level.h"
#include "text/utf8.h"

namespace hylora::text {

Tokenizer::Tokenizer(const nlohmann::json& j, bool split_special_tokens) {
  try {
    normalizer_ = Normalizer::from_json(j.value("normalizer", nlohmann::json()));
    pre_tokenizer_ = PreTokenizer::from_json(j.value("pre_tokenizer", nlohmann::json()));
    model_ = std::make_unique<BpeModel>(j.at("model"));
    added_ = AddedVocabulary(j.value("added_tokens", nlohmann::json()), split_special_tokens);
    const auto decoder = j.value("decoder", nlohmann::json());
    if (!decoder.is_null()) {
      std::string type = decoder.value("type", "");
      if (type != "ByteLevel")
        hylora::fail("tokenizer.json: decoder: expected type ByteLevel (or null), found '", type, "'");
      byte_level_decoder_ = true;
    }
  } catch (const nlohmann::json::exception& e) {
    hylora::fail("tokenizer.json: unexpected structure: ", e.what());
  }
}

std::unique_ptr<Tokenizer> Tokenizer::from_directory(const std::string& dir) {
  auto j = hylora::read_json_file_bounded<nlohmann::json>(dir + "/tokenizer.json", hylora::json_limits::kTokenizer);
  bool split_special = false;
  std::ifstream probe(dir + "/tokenizer_config.json");
  if (probe) {
    auto config = hylora::read_json_file_bounded<nlohmann::json>(dir + "/tokenizer_config.json",
                                                                 hylora::json_limits::kTokenizerConfig);
    if (config.contains("split_special_tokens") && config["split_special_tokens"].is_boolean())
      split_special = config["split_special_tokens"].get<bool>();
  }
  try {
    return std::make_unique<Tokenizer>(j, split_special);
  } catch (const hylora::Error& e) {
    hylora::fail(dir, "/", e.what());
  }
}

void Tokenizer::encode_text(std::string text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::vector<std::string> pieces{std::move(text)};
  if (pre_tokenizer_) pre_tokenizer_->split(pieces);
  for (const auto& word : pieces)
    if (!word.empty()) model_->encode_word(word, out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view input) const {
  std::string text = to_valid_utf8(input);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  // As HF's AddedVocabulary::extract_and_normalize: first the non-normalized added tokens on the raw text,
  // then normalization of what is between them, then the normalized added tokens.
  for (auto& raw : added_.split(text, false)) {
    if (raw.token) {
      ids.push_back(*raw.token);
      continue;
    }
    std::string normalized = normalizer_ ? normalizer_->normalize(std::move(raw.text)) : std::move(raw.text);
    for (auto& seg : added_.split(normalized, true)) {
      if (seg.token)
        ids.push_back(*seg.token);
      else
        encode_text(std::move(seg.text), ids);
    }
  }
  return ids;
}

std::string Tokenizer::token_bytes(int32_t id, bool skip_special_tokens) const {
  const std::string* token = nullptr;
  if (const AddedToken* a = added_.by_id(id)) {
    if (skip_special_tokens && a->special) return {};
    token = &a->content;
  } else {
    token = model_->id_to_token(id);
  }
  if (!token) hylora::fail("decode: token id ", id, " is not in the vocabulary (size ", vocab_size(), ")");
  if (!byte_level_decoder_) return *token;
  // HF's ByteLevel decoder: a token made only of alphabet symbols stands for those bytes; any other token
  // (e.g. an added token with characters outside the alphabet) stands for its own UTF-8.
  if (auto bytes = symbols_to_bytes(*token)) return *bytes;
  return *token;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    // Without a decoder HF joins tokens with spaces.
    if (!byte_level_decoder_ && i > 0) bytes += ' ';
    bytes += token_bytes(ids[i], skip_special_tokens);
  }
  return to_valid_utf8(bytes);
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  for (const auto& a : added_.tokens())
    if (a.content == token) return a.id;
  return model_->token_to_id(token);
}

std::size_t Tokenizer::vocab_size() const {
  std::size_t n = model_->vocab_size();
  for (const auto& a : added_.tokens()) n = std::max(n, static_cast<std::size_t>(a.id) + 1);
  return n;
}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tok_.token_bytes(id, skip_special_);
  std::size_t keep = incomplete_utf8_tail(pending_);
  // A lead byte ends any earlier sequence, so decoding the prefix alone gives the same text as decoding it
  // together with what follows.
  std::string out = to_valid_utf8(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out = to_valid_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace hylora::text
