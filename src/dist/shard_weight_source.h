#pragma once
// Per-rank weight loading (docs/multi_gpu.md §3, §6.1): a WeightSource that answers a rank's model with only
// that rank's rows / columns of each sharded tensor, cut by the plan and read as such from the checkpoint
// (WeightSource::get_block / experts_block: the rest of the tensor is never converted). The model asks for its
// *local* shapes (its config's head counts and widths are per rank, dist/shard_model.h), so the mixers' code is the
// same on one rank and on N. What is cut, by name:
// * `<slice module>.weight` [slice rows, in] of a Linear: column-parallel -> the slice's own rows on this rank (each
//   part at its own offset); row-parallel -> this rank's input columns; `.bias` follows the rows (row: whole).
// * a per-channel parameter (conv weights, A_log, dt_bias, D, norm weights) -> the rows of its parts.
// * the embedding table `<module>.weight` and `lm_head.weight` [V, H] -> this rank's vocabulary rows. The model asks
//   for them at the full [V, H] (its logits stay [R, V]) and gets [V_local, H]; dist::bind_shard then marks them.
// * expert projections [E, out, in] -> [E_local, out_local, in_local]: the rank's experts (ep), inside each the
//   rows or columns of its moe_tp split. The model asks with E whole (its router scores all experts).
// Anything the plan does not name (norms, q/k norms, routers) is replicated and passes through.
#include <memory>

#include "dist/shard_plan.h"
#include "io/weight_source.h"

namespace hylora::dist {

std::unique_ptr<WeightSource> shard_weights(std::unique_ptr<WeightSource> inner, const ShardPlan& plan, int rank);

}  // namespace hylora::dist
