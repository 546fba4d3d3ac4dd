#pragma once
// LoraMirror: the executor's device copy of the adapter slots (lora::LoraPool keeps the host masters). Only what a
// load changed goes up: the loaded slot's block of every buffer (A [slots, max_r, in], B [slots, out, max_r] and rank
// [slots], experts [slots·E, …]: slot s is one contiguous block of 1/slots of each buffer). Copying whole buffers after
// any load moved every slot of every target (about 12 GB per load at Qwen3.5-35B-A3B shapes with expert LoRA).
// An evict changes no buffer (the next load into the slot zeroes it, and that goes up with the load); the per-slot
// active flags are copied on every sync (a few bytes a target).
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "core/allocator.h"
#include "lora/lora_pool.h"
#include "models/lora_weights.h"

namespace hylora {

class LoraMirror {
 public:
  // Copies `bytes` from host memory into a block of the mirror's allocator (the executor: ops::memcpy on its stream).
  using Copy = std::function<void(void* dst, const void* src, size_t bytes)>;
  // A device copy of a whole host tensor (modules_to_save deltas, uploaded once per host tensor).
  using Upload = std::function<Tensor(const Tensor&)>;

  LoraMirror(Allocator& alloc, Copy copy, Upload upload);

  // Brings the mirror up to date with `pool`. The first call allocates the device buffers and zeroes them (the
  // allocator's zero, no copy); afterwards each slot loaded since the last call has its block copied again.
  void sync(const lora::LoraPool& pool);
  const LoraWeights& weights() const { return dev_; }
  // Some slot holds a modules_to_save replacement (host-chosen ops: the executor then runs no graphs).
  bool has_deltas() const { return has_deltas_; }

 private:
  void sync_flags(const LoraWeights& h);
  void sync_target(const LoraTargetWeights& src, LoraTargetWeights& dst, const std::vector<int32_t>& dirty,
                   int64_t slots, std::map<const void*, Tensor>& deltas);
  void copy_slot(const Tensor& src, Tensor& dst, int32_t slot, int64_t slots);
  Tensor delta(const Tensor& t, std::map<const void*, Tensor>& deltas);

  Allocator& alloc_;
  Copy copy_;
  Upload upload_;
  LoraWeights dev_;
  bool allocated_ = false;
  std::vector<int64_t> synced_;          // per slot: the pool's slot_version() last mirrored
  std::map<const void*, Tensor> deltas_;  // device copies of dense deltas, by host storage
  bool has_deltas_ = false;
};

}  // namespace hylora
