#pragma once
// Cutting one rank's shard out of whole tensors by the plan (the per-rank weight and adapter loading of
// docs/multi_gpu.md §3): a Linear's weight and bias, its LoRA slice buffers by the column/row rule, and an expert
// projection's experts. Host float32 copies; the result is what that rank's forward reads.
#include <vector>

#include "dist/shard_plan.h"
#include "ops/lora.h"

namespace hylora::dist {

// Copies the blocks rows × cols of every group of t ([G, R, C], or [R, C] as G = 1) into a new contiguous
// [Σ groups, Σ rows, Σ cols] tensor (2-D in, 2-D out), blocks in the order given. An empty list means all.
Tensor gather_blocks(const Tensor& t, const std::vector<Range>& groups, const std::vector<Range>& rows,
                     const std::vector<Range>& cols);

// Rank r's output rows (every slice, every part, in order) and input columns, as range lists.
std::vector<Range> out_rows(const RankShard& s);
std::vector<Range> in_cols(const RankShard& s);
// The rows of slice k, relative to the slice's first row (for the slice's LoRA B and modules_to_save delta).
std::vector<Range> slice_rows(const RankShard& s, size_t k, int64_t slice_offset);

// One rank's part of a Linear (or of one expert projection: weight [E_local, out_local, in_local]).
struct LinearShard {
  Parallel parallel = Parallel::kReplicated;
  Tensor weight;  // [out_local, in_local] (experts: [E_local, out_local, in_local])
  Tensor bias;    // column: [out_local]; row / replicated: [out], added once after the all-reduce; or undefined
  // Per slice, in order: out_offset / out_size in the local output; A [groups, max_r, in or in_local] (replicated
  // unless row-parallel), B [groups, slice_local_rows or out_slice, max_r] (sharded unless row-parallel / replicated),
  // rank [groups]. Experts: groups = slot · E_local + local expert.
  std::vector<ops::LoraSliceBuffers> lora;
  Range experts;  // experts held (expert projections)
  std::vector<const ops::LoraSliceBuffers*> lora_ptrs() const;
};

// weight [out, in] (experts [E, out, in]), bias [out] or undefined, lora: the whole projection's slice buffers
// (A [G, max_r, in], B [G, out_slice, max_r]; experts G = slots · E). `slots` is needed for experts only.
LinearShard shard_projection(const ProjectionPlan& plan, int rank, const Tensor& weight, const Tensor& bias,
                             const std::vector<ops::LoraSliceBuffers>& lora, int64_t slots = 0);

}  // namespace hylora::dist
