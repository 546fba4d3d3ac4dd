#pragma once
// A rank's shard model (docs/multi_gpu.md §6 item 3-4): the same model class as on one rank, built from a per-rank
// config (every split unit count — heads, KV heads, key/value heads, groups, widths — replaced by this rank's count,
// read from the plan's parts' `dimension` fields) with weights cut by dist/shard_weight_source.h, then bound to the
// plan: row-parallel projections marked for their all-reduce, lm_head for its all-gather, the embedding for its
// vocabulary split, LoRA slices resized to the rank's rows. The mixers run unchanged on the local counts.
#include <memory>
#include <string>

#include "dist/shard_plan.h"
#include "io/config.h"
#include "models/model.h"

namespace hylora::dist {

// config.json (or its text_config) with each split dimension set to rank `rank`'s unit count. vocab_size stays
// whole (the logits are gathered to [R, V]), and so does the expert count (every rank's router scores all experts;
// the experts a rank holds come from the plan, dist/shard_weight_source.h).
json local_config(const json& config, const ShardPlan& plan, int rank);

// Marks `m`'s projections and embedding by the plan and checks every local shape against it (a drifted per-rank
// config fails here, naming the projection).
void bind_shard(Model& m, const ShardPlan& plan, int rank);

// <dir>/config.json + checkpoint -> rank `rank`'s shard model (holding only its shard of every sharded tensor).
std::unique_ptr<Model> load_model_shard(const std::string& dir, const ShardPlan& plan, int rank);

}  // namespace hylora::dist
