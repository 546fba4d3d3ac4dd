#pragma once
// The adapter slots as the forward pass reads them (docs/lora.md §3): for every LoRA target and slice, buffers
// stacked over slots, allocated once at start-up, max-rank strided and zero past each adapter's rank, with the
// scaling folded into B. lora/'s slot pool writes them; models only read them, through the step's segments.
#include <cstdint>
#include <vector>

#include "ops/lora.h"

namespace hylora {

struct LoraTargetWeights {
  // Per slice: A [slots, max_r, in], B [slots, out_size, max_r], rank [slots] (int32).
  // Expert targets: A [slots·E, max_r, in], B [slots·E, out_size, max_r], rank [slots·E] (group = slot·E + expert).
  std::vector<ops::LoraSliceBuffers> slices;
  // [slots][slice] W' − W [out_size, in] of a modules_to_save replacement, or undefined (rare: host-side add).
  std::vector<std::vector<Tensor>> dense_delta;
  // [slots] 1 where the slot's adapter touches this target (a slice of nonzero rank, or a dense delta), 0 where all
  // its buffers here are zero. Host-side; lora/'s pool sets it on load and clears it on evict (the executor mirrors it
  // into its device copy). Empty = unknown: never skipped. Experts: per slot, not per slot·E group.
  std::vector<uint8_t> slot_active;
  // False only when no slot of `slots` (a step's segment slots, LoraSegments::group_host) touches this target, so
  // its LoRA ops would add exact zeros and are skipped (models/linear_forward.cpp). Unknown slots → true.
  bool active_for(const std::vector<int32_t>& slots) const {
    if (slot_active.empty() || slots.empty()) return true;
    for (int32_t s : slots)
      if (s < 0 || s >= static_cast<int32_t>(slot_active.size()) || slot_active[s]) return true;
    return false;
  }
  std::vector<const ops::LoraSliceBuffers*> slice_ptrs() const {
    std::vector<const ops::LoraSliceBuffers*> p;
    for (const auto& s : slices) p.push_back(&s);
    return p;
  }
};

struct LoraWeights {
  int64_t slots = 0;
  int64_t max_rank = 0;
  std::vector<LoraTargetWeights> linears;  // indexed by Linear::lora_id
  std::vector<LoraTargetWeights> experts;  // indexed by ExpertLinear::lora_id
  LoraTargetWeights embedding;             // one slice: A [slots, max_r, V], B [slots, H, max_r]
  std::vector<Tensor> embedding_delta;     // [slots] E' − E [V, H] of a replaced table, or undefined
  // embedding.slot_active covers embedding_delta too.

  // Every skip decision the forward pass can take for a step whose segments use `slots` (the step's LoRA segments)
  // and `logit_slots` (its logit segments, lm_head): one bit per (target, slot set), packed. The CUDA graph key
  // includes it (batch/graph_padding.h), since a captured graph bakes the decision in.
  std::vector<uint64_t> active_bits(const std::vector<int32_t>& slots, const std::vector<int32_t>& logit_slots) const {
    std::vector<uint64_t> bits;
    int64_t n = 0;
    auto push = [&](bool b) {
      if (n % 64 == 0) bits.push_back(0);
      if (b) bits.back() |= uint64_t{1} << (n % 64);
      ++n;
    };
    for (const auto& t : linears) {
      push(t.active_for(slots));
      push(t.active_for(logit_slots));
    }
    for (const auto& t : experts) push(t.active_for(slots));
    push(embedding.active_for(slots));
    return bits;
  }
};

}  // namespace hylora
