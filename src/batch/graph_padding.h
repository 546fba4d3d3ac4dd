#pragma once
// Bucket padding of a decode step for CUDA-graph replay (engine/cuda_graph_runner.h). A captured graph bakes in
// every host-side size its kernels were launched with (rows, sequences, page-table columns, LoRA rows and segments,
// logit rows) and the device addresses of the step's arrays. So a decode step of S sequences is padded to a fixed
// GraphShape: B = bucket_size(S) rows and sequences, a page table of a bucketed width, and, when any row uses an
// adapter, B LoRA rows over one segment per adapter slot. Two steps with the same GraphShape then have the same
// StepBatch layout (same field offsets and sizes), so one graph serves both once the new arrays are uploaded.
//
// Padding follows the kernels' conventions (src/ops/cuda/README.md, CUDA graphs): padding sequences have no new
// rows (cu_seqlens repeated), context 0, state slot −1 and no pages (−1); padding rows (S..B-1) belong to no
// sequence, have kv slot −1, adapter slot −1, token 0, position 0, and their logits are computed and discarded;
// unused LoRA segments are empty (indptr repeated) on the step's first segment slot (so the padded step's set of
// slots is the step's own: the LoRA skip decisions, GraphShape::lora_targets, see no extra slot); LoRA perm entries past the last segment are 0 and
// never read.
#include <compare>
#include <cstdint>
#include <vector>

#include "batch/step_batch.h"

namespace hylora {

struct GraphShape {
  int64_t rows = 0;           // B: rows = sequences = logit rows of the padded step
  int64_t max_pages = 0;      // page-table columns (a power of two ≥ the step's widest table)
  int64_t lora_segments = 0;  // 0: no row uses an adapter (LoRA kernels are not launched); else the slot count
  // Which LoRA targets the forward pass runs for this step's adapters (LoraWeights::active_bits of the padded step's
  // segment slots): targets no adapter of the step touches are skipped on the host (models/linear_forward.cpp), so a
  // graph captured for one set must not replay for another. Empty when lora_segments is 0. The executor sets it.
  std::vector<uint64_t> lora_targets;
  auto operator<=>(const GraphShape&) const = default;
};

// True when every sequence of `b` appends exactly one token and asks for its logits (a generation step).
bool is_decode_step(const StepBatch& b);
// Smallest power of two ≥ n (≥ 1): page-table widths, so that a growing context re-captures log₂ times, not per page.
int64_t page_bucket(int64_t n);
// The shape `b` (a decode step) is padded to; `lora_slots` = the executor's adapter slot count.
GraphShape graph_shape_of(const StepBatch& b, int64_t lora_slots);
// `b` laid out at `shape` (above). Requires is_decode_step(b), b.num_seqs ≤ shape.rows, b.max_pages ≤
// shape.max_pages, and shape.lora_segments ≥ b.num_lora_segments (0 only when b has no adapter row).
StepBatch pad_to_graph_shape(const StepBatch& b, const GraphShape& shape);

}  // namespace hylora
