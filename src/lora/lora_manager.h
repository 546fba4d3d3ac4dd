#pragma once
// Adapters loaded beside one base model, and the per-step binding of requests to slots (the scorer's and later the
// server's LoraStepBinder): names -> normalised adapters (host), slots (LoraPool), per-step metadata (LoraBatch).
#include <map>
#include <memory>
#include <string>

#include "engine/scorer.h"
#include "lora/adapter_loader.h"
#include "lora/lora_applier.h"
#include "lora/lora_pool.h"

namespace hylora::lora {

class LoraManager : public LoraStepBinder {
 public:
  LoraManager(const Model& model, int64_t max_lora_rank, int64_t max_loras_per_batch);

  // Loads, validates and normalises an adapter under `name` (refuses a duplicate name). Prints its warnings.
  void load(const std::string& name, const std::string& dir);
  // Forgets an adapter (its slot is freed; requests naming it are refused from now on).
  void unload(const std::string& name);
  std::shared_ptr<const NormalizedAdapter> find(const std::string& name) const;
  const LoraPool& pool() const { return pool_; }
  LoraPool& pool() { return pool_; }

  std::string check(const std::optional<std::string>& lora) const override;
  // Pinned adapters hold their slots, so a step may only count on the others (conservative: a step that uses a
  // pinned adapter also counts it, so it never needs more slots than exist; requests wait instead of failing).
  int64_t max_adapters_per_step() const override { return pool_.num_slots() - pool_.num_pinned(); }
  // Acquires a slot for every adapter of the step and builds its metadata; the applier stays valid until the next
  // bind. Null when no row of the step uses an adapter.
  const LoraApplier* bind(const ForwardBatch& batch, const std::vector<std::optional<std::string>>& span_lora) override;

 private:
  TargetIndex index_;
  int64_t max_rank_;
  LoraPool pool_;
  std::map<std::string, std::shared_ptr<const NormalizedAdapter>> adapters_;
  std::unique_ptr<MultiLoraApplier> step_;
};

}  // namespace hylora::lora
