#pragma once
// The adapter slots as the forward pass reads them (docs/lora.md §3): for every LoRA target and slice, buffers
// stacked over slots, allocated once at start-up, max-rank strided and zero past each adapter's rank, with the
// scaling folded into B. lora/'s slot pool writes them; models only read them, through the step's segments.
#include <vector>

#include "ops/lora.h"

namespace hylora {

struct LoraTargetWeights {
  // Per slice: A [slots, max_r, in], B [slots, out_size, max_r], rank [slots] (int32).
  // Expert targets: A [slots·E, max_r, in], B [slots·E, out_size, max_r], rank [slots·E] (group = slot·E + expert).
  std::vector<ops::LoraSliceBuffers> slices;
  // [slots][slice] W' − W [out_size, in] of a modules_to_save replacement, or undefined (rare: host-side add).
  std::vector<std::vector<Tensor>> dense_delta;
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
};

}  // namespace hylora
