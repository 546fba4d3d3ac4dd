// Expert parallelism (and tensor parallelism inside the experts) is exact: a gated expert MLP with (slot, expert)
// LoRA over routed tokens, each rank running its experts (and its part of each), one all-reduce for the block.
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
#include "ops/elementwise.h"
#include "ops/moe.h"

namespace hylora::dist {
namespace {

using namespace test;

// Expert parallelism (and tensor parallelism inside the experts): a gated expert MLP gate_up [E, 2·Ie, H] →
// silu(gate)·up → down [E, H, Ie], with (slot, expert) LoRA on both, over routed tokens; each rank runs its experts
// (and its part of each) and one all-reduce sums the block.
TEST(ShardedMath, ExpertParallelMlpEqualsUnsharded) {
  const int64_t E = 8, H = 12, Ie = 8, k = 2;
  const int64_t T = static_cast<int64_t>(kRowSlot.size());
  ModelShardSpec spec;
  spec.where = "toy experts";
  ProjectionSpec gu;
  gu.name = "gate_up";
  gu.kind = TargetKind::kExperts;
  gu.num_experts = E;
  gu.experts_dimension = "num_experts";
  gu.slices = {{"gate", {split("gate", "inter", "moe_intermediate_size", Ie, 1)}},
               {"up", {split("up", "inter", "moe_intermediate_size", Ie, 1)}}};
  gu.in_parts = {whole("in", H)};
  ProjectionSpec down;
  down.name = "down";
  down.kind = TargetKind::kExperts;
  down.num_experts = E;
  down.experts_dimension = "num_experts";
  down.slices = {{"down", {whole("out", H)}}};
  down.in_parts = {split("inter", "inter", "moe_intermediate_size", Ie, 1)};
  spec.projections = {gu, down};

  std::mt19937 g(99);
  Tensor x = randn({T, H}, g);
  Tensor w_gu = randn({E, 2 * Ie, H}, g, 0.3f), w_down = randn({E, H, Ie}, g, 0.4f);
  auto l_gu = lora_for(gu, g, kSlots * E, kMaxRank, kRanks);  // groups slot · E + expert
  auto l_down = lora_for(down, g, kSlots * E, kMaxRank, {2, 6, 8});
  // Routing: k distinct experts per token, positive weights.
  Tensor ids = Tensor::empty({T, k}, DType::I32), weights = Tensor::empty({T, k});
  Tensor row_slot = Tensor::empty({T}, DType::I32);
  std::uniform_int_distribution<int> pick(0, static_cast<int>(E) - 1);
  std::uniform_real_distribution<float> wt(0.2f, 1.0f);
  for (int64_t t = 0; t < T; ++t) {
    int a = pick(g), b = pick(g);
    while (b == a) b = pick(g);
    ids.i32()[t * k] = a, ids.i32()[t * k + 1] = b;
    weights.f32()[t * k] = wt(g), weights.f32()[t * k + 1] = wt(g);
    row_slot.i32()[t] = kRowSlot[t];
  }
  // One rank's block (whole experts when the shards are the whole projections): out [T, H], partial under sharding.
  auto block = [&](ExecCtx& ctx, const LinearShard& sgu, const LinearShard& sdown, const Tensor& lid,
                   const Tensor& lw, Tensor& out) {
    ops::MoePermutation perm;
    ops::moe_permute(ctx, lid, row_slot, sgu.weight.dim(0), kSlots, perm);
    Tensor xs = ctx.scratch.tensor({perm.num_pairs, H});
    ops::moe_gather(ctx, x, perm, k, xs);
    const int64_t ie = sgu.weight.dim(1) / 2;
    Tensor gu_out = ctx.scratch.tensor({perm.num_pairs, 2 * ie}), h = ctx.scratch.tensor({perm.num_pairs, ie});
    expert_projection(ctx, sgu, xs, perm, gu_out);
    ops::silu_mul_halves(ctx, gu_out, h);
    Tensor ys = ctx.scratch.tensor({perm.num_pairs, H});
    expert_projection(ctx, sdown, h, perm, ys);
    ops::moe_combine(ctx, ys, perm, lw, out);
  };
  Tensor ref = Tensor::empty({T, H});
  {
    ExecCtx ctx;
    const ShardPlan whole_plan = make_shard_plan(spec, 1);
    block(ctx, shard_projection(whole_plan.at("gate_up"), 0, w_gu, Tensor(), l_gu, kSlots),
          shard_projection(whole_plan.at("down"), 0, w_down, Tensor(), l_down, kSlots), ids, weights, ref);
  }
  for (const auto& sizes : std::vector<std::pair<int, int>>{{2, 2}, {4, 4}, {8, 8}, {4, 2}, {4, 1}, {8, 2}}) {
    const int tp = sizes.first, ep = sizes.second;
    const ShardPlan plan = make_shard_plan(spec, tp, ep);
    check_partition(plan);
    double worst = 0;
    std::mutex mu;
    run_ranks(tp, [&](Communicator& comm) {
      ExecCtx ctx;
      const LinearShard sgu = shard_projection(plan.at("gate_up"), comm.rank(), w_gu, Tensor(), l_gu, kSlots);
      const LinearShard sdown = shard_projection(plan.at("down"), comm.rank(), w_down, Tensor(), l_down, kSlots);
      Tensor lid = Tensor::empty({T, k}, DType::I32), lw = Tensor::empty({T, k});
      localize_routing(ids, weights, sgu.experts, lid, lw);
      Tensor out = Tensor::empty({T, H});
      block(ctx, sgu, sdown, lid, lw, out);
      comm.all_reduce_sum(ctx, out);  // the MoE block's one all-reduce
      const double d = rel_diff(out, ref);
      std::lock_guard<std::mutex> lock(mu);
      worst = std::max(worst, d);
    });
    std::cout << "expert MLP tp " << tp << " ep " << ep << ": max rel diff " << worst << "\n";
    EXPECT_LE(worst, kTolerance) << "tp " << tp << " ep " << ep;
  }
}

}  // namespace
}  // namespace hylora::dist
