#pragma once
// tokenizer.json "model" of type BPE: vocabulary, merges ranked by position, ignore_merges, unk_token with
// fuse_unk, byte_fallback. Encodes one pre-tokenized word at a time, caching the ids of words seen before.
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace hylora::text {

// Largest token id accepted anywhere in tokenizer.json, and the largest gap of unused ids in model.vocab.
inline constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;
inline constexpr int64_t kMaxVocabGap = 65536;


class BpeModel {
 public:
  explicit BpeModel(const nlohmann::json& model);

  // Appends the ids of one word (already in the model's alphabet, e.g. byte-level symbols) to `out`.
  void encode_word(const std::string& word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;  // nullptr when the model has no such id
  std::size_t vocab_size() const { return id_to_token_.size(); }
  bool byte_fallback() const { return byte_fallback_; }

 private:
  std::vector<int32_t> merge_word(const std::string& word) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;

  static constexpr std::size_t kCacheCapacity = 1 << 16;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace hylora::text
