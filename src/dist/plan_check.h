#pragma once
// Checks of a shard plan, each failing with one message that names the projection, part and rank:
// * check_partition: every part's ranks together hold it exactly (a split part: disjoint equal blocks covering it;
//   a replicated part: every unit on the same number of ranks; a whole part: everything on every rank), each part
//   cut at its own offset inside its slice, experts partitioned over the ep groups, every part of one unit family
//   giving a rank the same units, and every rank holding the parent units its child units read (KV heads of its
//   query heads, key heads of its GDN value heads, groups of its Mamba2 heads).
// * check_against_model: the plan's projections are exactly the model's declared LoRA targets (names, shapes,
//   slices with their offsets), so a spec written from the config cannot drift from the model files.
#include "dist/shard_plan.h"
#include "models/model.h"

namespace hylora::dist {

void check_partition(const ShardPlan& plan);
void check_against_model(const ShardPlan& plan, const LoraTargets& targets);

}  // namespace hylora::dist
