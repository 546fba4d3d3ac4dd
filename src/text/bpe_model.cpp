// Hand-written: no Debian library implements HF's BPE. The merge loop follows tokenizers' word.rs: a heap of
// candidate pairs ordered by (merge rank, position), so the lowest-ranked, leftmost pair is merged first.
#include "text/bpe_model.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "core/error.h"
#include "core/json_limits.h"

namespace hylora::text {
namespace {

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

std::size_t utf8_char_length(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  return 4;
}

}  // namespace

BpeModel::BpeModel(const nlohmann::json& model) {
  std::string type = model.value("type", "BPE");
  if (type != "BPE") hylora::fail("tokenizer.json: model.type: expected BPE, found '", type, "'");
  if (!model.value("continuing_subword_prefix", nlohmann::json()).is_null() &&
      !model["continuing_subword_prefix"].get<std::string>().empty())
    hylora::fail("tokenizer.json: model.continuing_subword_prefix: only an empty prefix is supported");
  if (!model.value("end_of_word_suffix", nlohmann::json()).is_null() &&
      !model["end_of_word_suffix"].get<std::string>().empty())
    hylora::fail("tokenizer.json: model.end_of_word_suffix: only an empty suffix is supported");
  if (!model.value("dropout", nlohmann::json()).is_null() && model["dropout"].get<double>() != 0.0)
    hylora::fail("tokenizer.json: model.dropout: only null/0 is supported (inference is deterministic)");

  const auto& vocab = model.at("vocab");
  if (!vocab.is_object()) hylora::fail("tokenizer.json: model.vocab: expected an object token -> id");
  vocab_.reserve(vocab.size());
  for (const auto& [token, id_json] : vocab.items()) {
    // Ids index a table: a dense vocabulary with bounded gaps, not whatever number the file says (1e8 would cost
    // gigabytes, 2^40 would wrap to 0).
    int64_t id64 = 0;
    const auto limit = std::min<int64_t>(kMaxTokenId, static_cast<int64_t>(vocab.size()) + kMaxVocabGap);
    if (!hylora::json_int_in_range(id_json, 0, limit, id64))
      hylora::fail("tokenizer.json: model.vocab: id ", id_json.dump(), " for token '", token,
                   "' is not an integer in [0, ", limit, "] (", vocab.size(), " entries; ids may leave at most ",
                   kMaxVocabGap, " unused)");
    const auto id = static_cast<int32_t>(id64);
    vocab_[token] = id;
    if (static_cast<std::size_t>(id) >= id_to_token_.size()) id_to_token_.resize(id + 1);
    id_to_token_[id] = token;
  }

  int32_t rank = 0;
  for (const auto& m : model.at("merges")) {
    std::string left, right;
    if (m.is_string()) {  // older format: "left right"
      auto s = m.get<std::string>();
      auto sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        hylora::fail("tokenizer.json: model.merges[", rank, "]: expected \"left right\", found '", s, "'");
      left = s.substr(0, sp);
      right = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      hylora::fail("tokenizer.json: model.merges[", rank, "]: expected a string or a pair, found ", m.dump());
    }
    auto l = vocab_.find(left), r = vocab_.find(right), merged = vocab_.find(left + right);
    if (l == vocab_.end() || r == vocab_.end() || merged == vocab_.end())
      hylora::fail("tokenizer.json: model.merges[", rank, "]: '", left, "' + '", right,
                   "': a part or the merged token is not in model.vocab");
    merges_.emplace(pair_key(l->second, r->second), std::make_pair(rank, merged->second));
    ++rank;
  }

  fuse_unk_ = model.value("fuse_unk", false);
  byte_fallback_ = model.value("byte_fallback", false);
  ignore_merges_ = model.value("ignore_merges", false);
  if (model.contains("unk_token") && !model["unk_token"].is_null()) {
    auto unk = model["unk_token"].get<std::string>();
    auto it = vocab_.find(unk);
    if (it == vocab_.end()) hylora::fail("tokenizer.json: model.unk_token '", unk, "' is not in model.vocab");
    unk_id_ = it->second;
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size()) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::encode_word(const std::string& word, std::vector<int32_t>& out) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = merge_word(word);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kCacheCapacity) cache_.clear();
  cache_.emplace(word, std::move(ids));
}

std::vector<int32_t> BpeModel::merge_word(const std::string& word) const {
  if (ignore_merges_) {
    if (auto it = vocab_.find(word); it != vocab_.end()) return {it->second};
  }

  // Initial symbols: one per character; characters outside the vocabulary become byte tokens (byte_fallback),
  // the unknown token (fused when fuse_unk), or nothing (HF drops them when there is no unk_token).
  struct Symbol {
    int32_t id;
    int prev, next;
    bool alive;
  };
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  bool last_was_unk = false;
  auto push = [&](int32_t id) {
    int n = static_cast<int>(sym.size());
    sym.push_back({id, n - 1, n + 1, true});
  };
  for (std::size_t i = 0; i < word.size();) {
    std::size_t len = std::min(utf8_char_length(static_cast<unsigned char>(word[i])), word.size() - i);
    auto it = vocab_.find(word.substr(i, len));
    if (it != vocab_.end()) {
      push(it->second);
      last_was_unk = false;
    } else {
      bool done = false;
      if (byte_fallback_) {
        std::vector<int32_t> bytes;
        for (std::size_t k = 0; k < len; ++k) {
          char name[8];
          std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned char>(word[i + k]));
          auto b = vocab_.find(name);
          if (b == vocab_.end()) break;
          bytes.push_back(b->second);
        }
        if (bytes.size() == len) {
          for (auto b : bytes) push(b);
          done = true;
          last_was_unk = false;
        }
      }
      if (!done && unk_id_) {
        if (!(fuse_unk_ && last_was_unk)) push(*unk_id_);
        last_was_unk = true;
      }
    }
    i += len;
  }
  if (!sym.empty()) sym.back().next = -1;

  struct Candidate {
    int32_t rank;
    int pos;
    int32_t merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](int left) {
    int right = sym[left].next;
    if (right < 0) return;
    auto m = merges_.find(pair_key(sym[left].id, sym[right].id));
    if (m != merges_.end()) heap.push({m->second.first, left, m->second.second});
  };
  for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) consider(i);

  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    Symbol& left = sym[c.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[left.next];
    // Skip stale candidates: the pair at this position changed since it was queued.
    auto m = merges_.find(pair_key(left.id, right.id));
    if (m == merges_.end() || m->second.second != c.merged) continue;
    left.id = c.merged;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = c.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(c.pos);
  }

  std::vector<int32_t> ids;
  for (int i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) ids.push_back(sym[i].id);
  return ids;
}

}  // namespace hylora::text
