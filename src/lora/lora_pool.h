#pragma once
// The adapter slots of docs/lora.md §3: --max-loras-per-batch slots whose buffers are stacked per (target, slice)
// in one LoraWeights, allocated once at start-up: A [slots, max_r, in], B [slots, out_slice, max_r] (experts:
// [slots·E, …]), max-rank strided, zero past the adapter's rank, scaling already in B. Loading an adapter into a slot
// zeroes everything the previous occupant left first. Slots are keyed by adapter identity (the shared_ptr), so an
// adapter reloaded under the same name never reuses stale buffers.
#include <cstdint>
#include <memory>
#include <set>
#include <vector>

#include "lora/normalized_adapter.h"
#include "models/lora_weights.h"
#include "models/model.h"

namespace hylora::lora {

class LoraPool {
 public:
  LoraPool(const LoraTargets& targets, int64_t num_slots, int64_t max_rank);

  int64_t num_slots() const { return static_cast<int64_t>(slots_.size()); }
  int64_t max_rank() const { return weights_.max_rank; }
  const LoraWeights& weights() const { return weights_; }

  // The slot holding `adapter`; when it is not resident, loads it into a free slot or else the least recently used
  // one that is neither pinned nor in `in_use` (the slots the current step already holds). Fails when none is left.
  int32_t acquire(const std::shared_ptr<const NormalizedAdapter>& adapter, const std::set<int32_t>& in_use = {});
  // A pinned adapter keeps its slot (at most num_slots − 1 pinned, so one slot always rotates).
  void pin(const std::shared_ptr<const NormalizedAdapter>& adapter);
  void unpin(const NormalizedAdapter& adapter);
  // Frees the adapter's slot (e.g. after an unload); its buffers are zeroed on the next load.
  void evict(const NormalizedAdapter& adapter);
  // Slot of a resident adapter, or -1.
  int32_t slot_of(const NormalizedAdapter& adapter) const;
  int64_t num_pinned() const;
  bool pinned(int32_t slot) const { return slots_.at(slot).pinned; }
  const NormalizedAdapter* occupant(int32_t slot) const { return slots_.at(slot).adapter.get(); }
  // How many times an adapter was copied into a slot (tests: reuse without reload).
  int64_t loads() const { return loads_; }
  // Changes whenever a load writes the slot's buffers (0 = never loaded: still zero), so a device mirror can copy
  // only the slots that changed (engine/lora_mirror.h). An evict leaves it: the buffers stay as they were.
  int64_t slot_version(int32_t slot) const { return slots_.at(slot).version; }

 private:
  struct Slot {
    std::shared_ptr<const NormalizedAdapter> adapter;
    uint64_t last_use = 0;
    bool pinned = false;
    int64_t version = 0;  // loads_ after the last load into this slot
  };
  void load_into(int32_t slot, const std::shared_ptr<const NormalizedAdapter>& adapter);
  void clear_active(int32_t slot);  // LoraTargetWeights::slot_active of every target, for `slot`

  const LoraTargets& targets_;
  LoraWeights weights_;
  std::vector<Slot> slots_;
  uint64_t clock_ = 0;
  int64_t loads_ = 0;
};

}  // namespace hylora::lora
