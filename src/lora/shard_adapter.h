#pragma once
// Cutting a rank's shard out of a normalised adapter (docs/multi_gpu.md §3-4): the adapter is read and validated
// once against the whole model's shapes, then every rank keeps its part, which its own LoraPool (built from the
// rank's shard model, so with local shapes) loads like any adapter. Per target, by the plan:
// * column-parallel: A [r, in] replicated; B [out_slice, r] -> the slice's own rows on this rank (each part at its
//   own offset); a modules_to_save delta [out_slice, in] -> the same rows.
// * row-parallel: A -> this rank's input columns (the rank-sized shrink is all-reduced before the expand,
//   models/tp_linear_forward.h); B replicated; a delta -> the same columns (its partial product is summed by the
//   same all-reduce).
// * replicated: whole. Embedding: A [r, V] -> this rank's vocabulary columns, B replicated; a replaced table
//   [V, H] -> this rank's vocabulary rows.
// * experts: A [E, r, in], B [E, out, r] -> the rank's experts, then the column / row rule inside each (a row split
//   inside an expert is expanded locally; the MoE block's one all-reduce sums the partial deltas: linear).
// Ranks below --max-lora-rank need nothing special: A and B keep their true rank r; the pool pads to max_r.
#include <memory>

#include "dist/shard_plan.h"
#include "lora/adapter_loader.h"
#include "lora/normalized_adapter.h"
#include "models/model.h"

namespace hylora::lora {

// `whole`: the adapter normalised against the whole model's shapes (a TargetIndex built with whole_target_shapes on
// the rank's shard model, or one built on the whole model); `rank_targets`: the rank's shard model's targets (the
// same targets in the same order as the plan's projections). Replacement weights kept whole
// (NormalizedAdapter::deltas_are_replacements) are cut and become W' − W against the rank's own base shard; every
// replacement stays (even one that equals the base on this rank) so that all ranks' row-parallel all-reduces carry
// the same buffers.
std::shared_ptr<NormalizedAdapter> shard_adapter(const NormalizedAdapter& whole, const LoraTargets& rank_targets,
                                                 const dist::ShardPlan& plan, int rank);

// The whole model's target shapes for a rank's shard model (its targets' names looked up in the plan), for
// TargetIndex(model, whole): a rank validates an adapter as one GPU would, then cuts its shard.
TargetShapes whole_target_shapes(const LoraTargets& rank_targets, const dist::ShardPlan& plan);

}  // namespace hylora::lora
