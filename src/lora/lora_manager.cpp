#include "lora/lora_manager.h"

#include <cstdio>
#include <set>

namespace hylora::lora {

LoraManager::LoraManager(const Model& model, int64_t max_lora_rank, int64_t max_loras_per_batch)
    : index_(model), max_rank_(max_lora_rank), pool_(model.lora_targets(), max_loras_per_batch, max_lora_rank) {}

void LoraManager::load(const std::string& name, const std::string& dir) {
  if (name.empty()) fail("--lora ", "=", dir, ": the adapter name is empty (expected NAME=DIR)");
  if (adapters_.count(name))
    fail("adapter \"", name, "\": the name is already loaded (from ", adapters_.at(name)->dir, "); each adapter needs "
         "a distinct name");
  auto a = load_adapter(name, dir, index_, max_rank_);
  for (auto& w : a->warnings) std::fprintf(stderr, "hylora: warning: %s\n", w.c_str());
  adapters_[name] = std::move(a);
}

void LoraManager::unload(const std::string& name) {
  if (!adapters_.erase(name)) fail("adapter \"", name, "\" is not loaded");
  pool_.evict(name);
}

std::shared_ptr<const NormalizedAdapter> LoraManager::find(const std::string& name) const {
  auto it = adapters_.find(name);
  return it == adapters_.end() ? nullptr : it->second;
}

std::string LoraManager::check(const std::optional<std::string>& lora) const {
  if (!lora || adapters_.count(*lora)) return "";
  std::string known;
  for (auto& [n, _] : adapters_) known += (known.empty() ? "" : ", ") + n;
  return "unknown adapter (loaded: " + (known.empty() ? std::string("none") : known) + ")";
}

const LoraApplier* LoraManager::bind(const ForwardBatch& batch,
                                     const std::vector<std::optional<std::string>>& span_lora) {
  HYLORA_CHECK(span_lora.size() == batch.seqs.size(), "internal: ", span_lora.size(), " adapter names for ",
               batch.seqs.size(), " sequences");
  step_.reset();
  std::vector<int32_t> row_slot(batch.num_tokens(), -1);  // [N]
  std::set<int32_t> in_use;
  for (size_t s = 0; s < span_lora.size(); ++s) {
    if (!span_lora[s]) continue;
    auto a = find(*span_lora[s]);
    if (!a) fail("adapter \"", *span_lora[s], "\": ", check(span_lora[s]));
    const int32_t slot = pool_.acquire(a, in_use);
    in_use.insert(slot);
    const SeqSpan& sp = batch.seqs[s];
    std::fill(row_slot.begin() + sp.row_begin, row_slot.begin() + sp.row_begin + sp.n_tokens, slot);
  }
  if (in_use.empty()) return nullptr;  // base-model rows only: no LoRA work at all
  step_ = std::make_unique<MultiLoraApplier>(pool_, make_lora_batch(std::move(row_slot)));
  return step_.get();
}

}  // namespace hylora::lora
