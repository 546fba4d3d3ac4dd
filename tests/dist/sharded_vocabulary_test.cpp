// The vocabulary split is exact: the embedding (row-parallel over the one-hot vocabulary, LoRA A cut by vocabulary)
// and lm_head (column-parallel by vocabulary, logits all-gathered), with LoRA of three adapters and base rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <mutex>
#include <random>

#include "core/error.h"
#include "dist/in_process_communicator.h"
#include "dist/plan_check.h"
#include "dist/shard_plan.h"
#include "dist/sharded_linear.h"
#include "sharding_test_support.h"
#include "dist/model_shard_specs.h"
#include "dist/sharded_embedding.h"
#include "ops/elementwise.h"

namespace hylora::dist {
namespace {

using namespace test;

// The vocabulary split: the embedding (row-parallel over the one-hot vocabulary, LoRA A cut by vocabulary, one
// all-reduce of [lookup | shrink]) and lm_head (column-parallel by vocabulary, logits all-gathered), both with LoRA
// of three adapters and base rows, equal the unsharded ops.
TEST(ShardedMath, VocabularySplitEmbeddingAndLmHeadEqualUnsharded) {
  const int64_t V = 40, H = 12;
  const int64_t T = static_cast<int64_t>(kRowSlot.size());
  std::mt19937 g(5);
  ModelShardSpec spec;
  spec.where = "toy vocabulary";
  spec.projections = {spec_parts::embedding("emb", V, H), spec_parts::lm_head(V, H)};
  Segments seg(kRowSlot, kSlots);
  Tensor table = randn({V, H}, g), ids = Tensor::empty({T}, DType::I32);
  std::uniform_int_distribution<int> pick(0, static_cast<int>(V) - 1);
  for (int64_t t = 0; t < T; ++t) ids.i32()[t] = pick(g);
  const ops::LoraSliceBuffers emb_lora = lora_slice(g, kSlots, kMaxRank, V, H, kRanks, 0);
  Tensor ref = Tensor::empty({T, H});
  {
    ExecCtx ctx;
    ops::embedding(ctx, table, ids, ref);
    Tensor s = Tensor::empty({seg.seg.num_rows, 1, kMaxRank});
    ops::lora_shrink_embedding(ctx, ids, seg.seg, {&emb_lora}, s);
    ops::lora_expand(ctx, s, seg.seg, {&emb_lora}, ref);
  }
  Tensor head = randn({V, H}, g, 0.3f);
  auto head_lora = lora_for(spec.projections[1], g, kSlots, kMaxRank, kRanks);
  Tensor logits_ref = reference(ref, head, Tensor(), head_lora, seg.seg);
  for (int tp : {1, 2, 4, 8}) {
    const ShardPlan plan = make_shard_plan(spec, tp);
    check_partition(plan);
    double worst_emb = 0, worst_logits = 0;
    std::mutex mu;
    run_ranks(tp, [&](Communicator& comm) {
      ExecCtx ctx;
      const EmbeddingShard e = shard_embedding(plan.at("emb"), comm.rank(), table, &emb_lora);
      Tensor y = Tensor::empty({T, H});
      sharded_embedding(ctx, comm, e, ids, seg.seg, y);
      const LinearShard lm = shard_projection(plan.at("lm_head"), comm.rank(), head, Tensor(), head_lora);
      Tensor local = Tensor::empty({T, V / tp}), logits = Tensor::empty({T, V});
      sharded_linear(ctx, comm, lm, ref, seg.seg, local);
      comm.all_gather_columns(ctx, local, logits);
      const double de = rel_diff(y, ref), dl = rel_diff(logits, logits_ref);
      std::lock_guard<std::mutex> lock(mu);
      worst_emb = std::max(worst_emb, de);
      worst_logits = std::max(worst_logits, dl);
    });
    std::cout << "tp " << tp << ": embedding max rel diff " << worst_emb << ", logits " << worst_logits << "\n";
    EXPECT_LE(worst_emb, kTolerance) << "tp " << tp;
    EXPECT_LE(worst_logits, kTolerance) << "tp " << tp;
  }
}

}  // namespace
}  // namespace hylora::dist
