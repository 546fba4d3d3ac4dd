#pragma once
// The shard plan (docs/multi_gpu.md §2-3): for a tensor-parallel size tp and an expert-parallel size ep, which rows
// and columns of every projection each rank holds, and the LoRA rule that follows from it.
//
// * Column-parallel (some output part is split): rank r holds, for every slice, the rows of each part it is given
//   (absolute row offsets in the fused weight, each part cut at its own offset); its local output is those rows in
//   slice/part order. LoRA: A replicated, B sharded by the output rows of each slice. No communication.
// * Row-parallel (some input part is split): rank r holds input columns; its output [T, out] is a partial sum.
//   LoRA: A sharded by the same columns, the rank-sized shrink output all-reduced (with the partial output, in one
//   all-reduce), B replicated and applied after it.
// * Replicated: every rank holds everything; LoRA whole on every rank.
// * Experts: ranks form ep groups of moe_tp = tp / ep ranks (rank = ep_rank · moe_tp + moe_tp_rank); ep_rank holds
//   experts [ep_rank · E/ep, …) and inside each expert the parts are split over the moe_tp ranks of its group.
//   Expert LoRA follows its expert (and the column/row rule inside it). The block ends in one all-reduce over all
//   tp ranks, which sums both the experts held elsewhere and the row-split partial sums.
#include <cstdint>
#include <string>
#include <vector>

#include "dist/shard_spec.h"

namespace hylora::dist {

enum class Parallel { kColumn, kRow, kReplicated };
const char* parallel_name(Parallel p);

struct Range {
  int64_t begin = 0, size = 0;
  int64_t end() const { return begin + size; }
  bool operator==(const Range&) const = default;
};

// One part on one rank: which units it holds and the absolute rows (or columns) they are.
struct PartShard {
  Range units;
  Range rows;  // absolute offsets in the fused weight's rows (output parts) or columns (input parts)
};

struct RankShard {
  std::vector<std::vector<PartShard>> slices;  // [slice][part], output side
  std::vector<PartShard> in_parts;             // [input part]
  Range experts;                               // experts held (kExperts; [0, 0) otherwise)
  int64_t out_local() const;                   // rows of the local weight
  int64_t in_local() const;                    // columns of the local weight
  int64_t slice_local_rows(size_t slice) const;
};

struct ProjectionPlan {
  ProjectionSpec spec;
  Parallel parallel = Parallel::kReplicated;
  int64_t divisor = 1;           // ranks the parts are split over: tp, or moe_tp for experts
  std::vector<RankShard> ranks;  // [tp]
};

// The LoRA rule of a parallel kind (issue 8 item 3), for code that loads adapters per rank and for the docs.
struct LoraShardRule {
  bool a_sharded_by_input;       // A [r, in_local] (row) vs A [r, in] replicated
  bool b_sharded_by_slice_rows;  // B [slice_local_rows, r] (column) vs B replicated
  bool shrink_all_reduced;       // the shrink output [rows, slices, max_r] is summed over ranks before expand
};
LoraShardRule lora_rule(Parallel p);

struct ShardPlan {
  int tp = 1, ep = 1;
  ModelShardSpec spec;
  std::vector<ProjectionPlan> projections;  // in spec order
  int moe_tp() const { return tp / ep; }
  // The plan of `name`, or an error naming it.
  const ProjectionPlan& at(const std::string& name) const;
  // The units of `family` rank `rank` holds, e.g. units("model.layers.3.self_attn/kv_heads", r): what a layer's
  // forward and its cache pools are sized by on that rank (local heads, KV heads, groups, value heads).
  Range units(const std::string& family, int rank) const;
};

// Elements of every weight rank `rank` holds (projections, experts, embedding, per-channel parameters; not the
// replicated norms, which are O(hidden) per layer): times the dtype size, the per-GPU weight floor. A tied lm_head
// counts nothing of its own.
int64_t rank_parameters(const ShardPlan& plan, int rank);

// The units rank index `i` of `d` holds under UnitPolicy::kSplitUneven: units / d each, the first units % d ranks
// one more, contiguous in rank order (so the ranks' ranges, concatenated, are [0, units)).
Range uneven_units(int64_t units, int64_t d, int64_t i);

// Computes the plan; refuses (hylora::Error) a size that does not divide, naming the config field, its value, the
// size it must divide by and the projection: e.g. "…/config.json: --tp 3: num_attention_heads = 16 is not
// divisible by 3 (model.layers.3.self_attn.qkv, slice model.layers.3.self_attn.q_proj, part q)".
ShardPlan make_shard_plan(const ModelShardSpec& spec, int tp, int ep = 1);

}  // namespace hylora::dist
