#pragma once
// Per-step LoRA metadata (lora.md §4), built once on the host and shared by every layer: each row's slot, and the
// adapter rows grouped by slot (permutation + segment offsets + slot per segment). Base-model rows are in no
// segment.
#include <cstdint>
#include <vector>

#include "ops/lora.h"

namespace hylora::lora {

struct LoraBatch {
  std::vector<int32_t> row_slot;  // [N] slot of each row, -1 = base model (also what MoE layers read per token)
  ops::LoraSegments segments;     // adapter rows of the whole step, grouped by slot

  int64_t num_rows() const { return static_cast<int64_t>(row_slot.size()); }
  bool empty() const { return segments.num_rows() == 0; }
};

// From each row's slot (-1 = base). Segments follow increasing slot; rows keep their order inside a segment.
LoraBatch make_lora_batch(std::vector<int32_t> row_slot);

// Segments of a subset of rows (an expert's tokens): `rows` are batch rows; the result's perm indexes `rows`.
ops::LoraSegments segments_of_rows(const std::vector<int32_t>& row_slot, const std::vector<int64_t>& rows);

}  // namespace hylora::lora
