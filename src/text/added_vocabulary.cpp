#include "text/added_vocabulary.h"

#include "core/json_limits.h"
#include "text/bpe_model.h"

#include <algorithm>

#include "core/error.h"
#include "text/utf8.h"

namespace hylora::text {
namespace {

// Rust's char::is_whitespace (the White_Space property), used by lstrip/rstrip.
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Rust's "word character" test of single_word: alphanumeric or '_' (ASCII is enough for a boundary check on
// these vocabularies; non-ASCII letters are treated as word characters too).
bool is_word_char(char32_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

// Code point before byte offset `i` (valid UTF-8), and its length.
std::pair<char32_t, std::size_t> char_before(std::string_view s, std::size_t i) {
  std::size_t b = i - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  auto u = utf8_to_u32(s.substr(b, i - b));
  return {u.empty() ? 0 : u[0], i - b};
}

std::pair<char32_t, std::size_t> char_at(std::string_view s, std::size_t i) {
  std::size_t e = i + 1;
  while (e < s.size() && (static_cast<unsigned char>(s[e]) & 0xC0) == 0x80) ++e;
  auto u = utf8_to_u32(s.substr(i, e - i));
  return {u.empty() ? 0 : u[0], e - i};
}

}  // namespace

AddedVocabulary::AddedVocabulary(const nlohmann::json& added_tokens, bool split_special_tokens) {
  if (added_tokens.is_null()) return;
  for (const auto& t : added_tokens) {
    AddedToken a;
    int64_t id = 0;
    if (!hylora::json_int_in_range(t.at("id"), 0, kMaxTokenId, id))
      hylora::fail("tokenizer.json: added_tokens: id ", t.at("id").dump(), " is not an integer in [0, ", kMaxTokenId,
                   "]");
    a.id = static_cast<int32_t>(id);
    a.content = t.at("content").get<std::string>();
    a.special = t.value("special", false);
    a.lstrip = t.value("lstrip", false);
    a.rstrip = t.value("rstrip", false);
    a.single_word = t.value("single_word", false);
    // HF's default: special tokens are not normalized, others are.
    a.normalized = t.contains("normalized") ? t["normalized"].get<bool>() : !a.special;
    if (a.content.empty()) hylora::fail("tokenizer.json: added_tokens: token ", a.id, " has empty content");
    by_id_[a.id] = tokens_.size();
    tokens_.push_back(std::move(a));
  }
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    const auto& t = tokens_[i];
    if (t.special && split_special_tokens) continue;
    by_first_byte_[t.normalized][static_cast<unsigned char>(t.content[0])].push_back(i);
  }
  for (auto& table : by_first_byte_)
    for (auto& list : table)
      std::stable_sort(list.begin(), list.end(),
                       [&](std::size_t a, std::size_t b) { return tokens_[a].content.size() > tokens_[b].content.size(); });
}

const AddedToken* AddedVocabulary::by_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::vector<Segment> AddedVocabulary::split(std::string_view text, bool normalized) const {
  std::vector<Segment> out;
  const auto& table = by_first_byte_[normalized];
  std::size_t start_offset = 0;  // end of the previous match
  for (std::size_t i = 0; i < text.size();) {
    const auto& candidates = table[static_cast<unsigned char>(text[i])];
    const AddedToken* found = nullptr;
    for (auto idx : candidates) {
      const auto& c = tokens_[idx].content;
      if (text.compare(i, c.size(), c) == 0) {
        found = &tokens_[idx];
        break;  // longest first
      }
    }
    if (!found) {
      ++i;
      continue;
    }
    std::size_t start = i, stop = i + found->content.size();
    if (found->single_word) {
      bool ok = (start == 0 || !is_word_char(char_before(text, start).first)) &&
                (stop == text.size() || !is_word_char(char_at(text, stop).first));
      if (!ok) {  // HF drops the match and resumes after it
        i = stop;
        continue;
      }
    }
    if (found->lstrip) {
      while (start > start_offset) {
        auto [c, len] = char_before(text, start);
        if (!is_white_space(c)) break;
        start -= len;
      }
    }
    if (found->rstrip) {
      while (stop < text.size()) {
        auto [c, len] = char_at(text, stop);
        if (!is_white_space(c)) break;
        stop += len;
      }
    }
    if (start > start_offset) out.push_back({std::string(text.substr(start_offset, start - start_offset)), {}});
    out.push_back({std::string(text.substr(start, stop - start)), found->id});
    start_offset = i = stop;
  }
  if (start_offset < text.size() || out.empty())
    out.push_back({std::string(text.substr(start_offset)), {}});
  return out;
}

}  // namespace hylora::text
