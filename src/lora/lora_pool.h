#pragma once
// The adapter slots of lora.md §3: --max-loras-per-batch slots; per (slot, target, slice) the buffers
// A [max_r, in] and B [out_slice, max_r] (experts: [E, max_r, in] / [E, out_slice, max_r]), max-rank strided, zero
// past the adapter's rank, scaling already in B. Loading an adapter into a slot zeroes everything the previous
// occupant left first. Buffers are allocated the first time an adapter in that slot touches the (target, slice)
// and are reused (zeroed) afterwards.
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "lora/normalized_adapter.h"
#include "models/model.h"
#include "ops/lora.h"

namespace hylora::lora {

class LoraPool {
 public:
  LoraPool(const LoraTargets& targets, int64_t num_slots, int64_t max_rank);

  int64_t num_slots() const { return static_cast<int64_t>(slots_.size()); }
  int64_t max_rank() const { return max_rank_; }

  // The slot holding `adapter`; when it is not resident, loads it into a free slot or else the least recently used
  // one that is neither pinned nor in `in_use` (the slots the current step already holds). Fails when none is left.
  int32_t acquire(const std::shared_ptr<const NormalizedAdapter>& adapter, const std::set<int32_t>& in_use = {});
  // A pinned adapter keeps its slot (at most num_slots − 1 pinned, so one slot always rotates).
  void pin(const std::shared_ptr<const NormalizedAdapter>& adapter);
  void unpin(const std::string& name);
  // Frees the adapter's slot (e.g. unload); its buffers are zeroed on the next load.
  void evict(const std::string& name);
  // Slot of a resident adapter, or -1.
  int32_t slot_of(const std::string& name) const;
  int64_t num_pinned() const;
  const NormalizedAdapter* occupant(int32_t slot) const { return slots_.at(slot).adapter.get(); }
  // How many times an adapter was copied into a slot (tests: reuse without reload).
  int64_t loads() const { return loads_; }

  // Buffers of one target for the ops: one entry per slice, one pointer per slot (null where never allocated).
  std::vector<ops::LoraSliceBuffers> linear_buffers(int32_t target) const;
  std::vector<ops::LoraSliceBuffers> expert_buffers(int32_t target, int64_t expert) const;
  std::vector<ops::LoraSliceBuffers> embedding_buffers() const;
  // True rank per slice of a slot (0 = untouched), lora.md §4.
  int64_t linear_rank(int32_t slot, int32_t target, int32_t slice) const;
  // Dense replacement deltas of the slot's adapter on a linear target.
  std::vector<const DenseDelta*> linear_deltas(int32_t slot, int32_t target) const;
  const Tensor* embedding_delta(int32_t slot) const;

 private:
  struct Buffers {
    Tensor A;  // [max_r, in] or [E, max_r, in]; embedding [max_r, vocab]
    Tensor B;  // [out_slice, max_r] or [E, out_slice, max_r]; embedding [H, max_r]
    int64_t rank = 0;
  };
  struct Slot {
    std::shared_ptr<const NormalizedAdapter> adapter;
    std::vector<std::vector<Buffers>> linears;  // [target][slice]
    std::vector<std::vector<Buffers>> experts;  // [target][slice]
    Buffers embedding;
    uint64_t last_use = 0;
    bool pinned = false;
  };
  void load_into(Slot& slot, const std::shared_ptr<const NormalizedAdapter>& adapter);
  void fill(Buffers& b, const NormalizedSlice& s, int64_t E, int64_t in, int64_t out_size);

  const LoraTargets& targets_;
  int64_t max_rank_;
  std::vector<Slot> slots_;
  uint64_t clock_ = 0;
  int64_t loads_ = 0;
};

}  // namespace hylora::lora
