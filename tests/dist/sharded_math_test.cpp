// The sharded math is exact (issue 8 items 2-3): for random weights with multi-slice LoRA (slices of different
// sizes, fused parts, ranks below max_rank, several adapters, base rows mixed in), column-parallel, row-parallel
// and expert-parallel forwards over N in-process ranks equal the unsharded ops within float32 rounding. The
// shards are cut by the plan (dist/shard_tensors.h), so a slice cut at a wrong offset or a row-parallel shrink
// that is not all-reduced fails these tests (ShardedMath.*Detects* show the size of such an error).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <mutex>
#include <random>

#include "core/error.h"
#include "dist/in_process_communicator.h"
#include "dist/model_shard_specs.h"
#include "dist/plan_check.h"
#include "dist/sharded_embedding.h"
#include "dist/shard_plan.h"
#include "dist/sharded_linear.h"
#include "ops/elementwise.h"
#include "ops/linear.h"

namespace hylora::dist {
namespace {

constexpr double kTolerance = 1e-5;  // relative to the largest |y|: float32 rounding of differently summed terms

Tensor randn(Shape shape, std::mt19937& g, float scale = 1.0f) {
  Tensor t = Tensor::empty(std::move(shape));
  std::normal_distribution<float> n(0.0f, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = n(g);
  return t;
}

// Stacked slot buffers of one slice: A [G, max_r, in], B [G, out, max_r], zero past each group's rank.
ops::LoraSliceBuffers lora_slice(std::mt19937& g, int64_t groups, int64_t max_r, int64_t in, int64_t out,
                                 const std::vector<int32_t>& ranks, int64_t out_offset) {
  ops::LoraSliceBuffers s;
  s.out_offset = out_offset;
  s.out_size = out;
  s.A = Tensor::zeros({groups, max_r, in});
  s.B = Tensor::zeros({groups, out, max_r});
  s.rank = Tensor::empty({groups}, DType::I32);
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (int64_t q = 0; q < groups; ++q) {
    const int32_t r = ranks[q % ranks.size()];
    s.rank.i32()[q] = r;
    for (int64_t j = 0; j < r; ++j)
      for (int64_t c = 0; c < in; ++c) s.A.f32()[(q * max_r + j) * in + c] = n(g) / std::sqrt(static_cast<float>(in));
    for (int64_t o = 0; o < out; ++o)
      for (int64_t j = 0; j < r; ++j) s.B.f32()[(q * out + o) * max_r + j] = 0.5f * n(g);
  }
  return s;
}

std::vector<ops::LoraSliceBuffers> lora_for(const ProjectionSpec& spec, std::mt19937& g, int64_t groups, int64_t max_r,
                                            const std::vector<int32_t>& ranks) {
  std::vector<ops::LoraSliceBuffers> out;
  int64_t off = 0;
  for (size_t k = 0; k < spec.slices.size(); ++k) {
    // Each slice its own ranks (rotated), so the slices of one adapter differ in rank too.
    std::vector<int32_t> rk = ranks;
    std::rotate(rk.begin(), rk.begin() + static_cast<long>(k % rk.size()), rk.end());
    out.push_back(lora_slice(g, groups, max_r, spec.in_features(), spec.slices[k].rows(), rk, off));
    off += spec.slices[k].rows();
  }
  return out;
}

// Segments of a step whose rows are bound to slots (-1 = base): adapter rows grouped by slot, step order inside.
struct Segments {
  Tensor perm, indptr, group;
  ops::LoraSegments seg;
  explicit Segments(const std::vector<int>& row_slot, int slots) {
    std::vector<int32_t> p, ip{0}, gr;
    for (int s = 0; s < slots; ++s) {
      size_t before = p.size();
      for (size_t t = 0; t < row_slot.size(); ++t)
        if (row_slot[t] == s) p.push_back(static_cast<int32_t>(t));
      if (p.size() > before) {
        ip.push_back(static_cast<int32_t>(p.size()));
        gr.push_back(s);
      }
    }
    auto make = [](const std::vector<int32_t>& v) {
      Tensor t = Tensor::empty({static_cast<int64_t>(std::max<size_t>(v.size(), 1))}, DType::I32);
      std::copy(v.begin(), v.end(), t.i32());
      return t;
    };
    perm = make(p), indptr = make(ip), group = make(gr);
    seg.num_rows = static_cast<int64_t>(p.size());
    seg.num_segments = static_cast<int64_t>(gr.size());
    seg.perm = perm.rows(0, seg.num_rows);
    seg.indptr = indptr.rows(0, seg.num_segments + 1);
    seg.group = group.rows(0, seg.num_segments);
    seg.group_host = gr;
  }
};

std::vector<const ops::LoraSliceBuffers*> ptrs(const std::vector<ops::LoraSliceBuffers>& v) {
  std::vector<const ops::LoraSliceBuffers*> p;
  for (const auto& s : v) p.push_back(&s);
  return p;
}

// The unsharded projection: y [T, out] = x Wᵀ + b + LoRA.
Tensor reference(const Tensor& x, const Tensor& w, const Tensor& b, const std::vector<ops::LoraSliceBuffers>& lora,
                 const ops::LoraSegments& seg) {
  ExecCtx ctx;
  Tensor y = Tensor::empty({x.dim(0), w.dim(0)});
  ops::matmul_nt(ctx, x, w, y);
  if (b.defined()) ops::add_bias(ctx, b, y);
  Tensor s = Tensor::empty({seg.num_rows, static_cast<int64_t>(lora.size()), lora[0].A.dim(1)});
  ops::lora_shrink(ctx, x, seg, ptrs(lora), s);
  ops::lora_expand(ctx, s, seg, ptrs(lora), y);
  return y;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(t.f32()[i])));
  return m;
}

// max |a − b| / max |b|, both contiguous of the same shape.
double rel_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(a.f32()[i]) - b.f32()[i]));
  return m / std::max(max_abs(b), 1e-30);
}

// A GDN-like fused column projection: slices [qkv: q (4 heads × 3), k (same), v (8 × 5)], [z 8 × 5], [b 8], [a 8]
// (Hk 4, Hv 8), input 20; and a row projection reading the value heads with two output slices of 9 and 4 rows.
ModelShardSpec toy_spec() {
  ModelShardSpec s;
  s.where = "toy";
  ProjectionSpec in;
  in.name = "in_proj";
  auto q = [](const char* n) { return split_or_replicate(n, "key", "Hk", 4, 3); };
  auto v = [](const char* n, int64_t size) { return split(n, "value", "Hv", 8, size); };
  in.slices = {{"qkv", {q("q"), q("k"), v("v", 5)}}, {"z", {v("z", 5)}}, {"b", {v("b", 1)}}, {"a", {v("a", 1)}}};
  in.in_parts = {whole("in", 20)};
  s.projections.push_back(in);
  ProjectionSpec out;
  out.name = "out_proj";
  out.slices = {{"out_a", {whole("a", 9)}}, {"out_b", {whole("b", 4)}}};
  out.in_parts = {v("value", 5)};
  s.projections.push_back(out);
  s.relations.push_back({"value", "key", 2});
  return s;
}

const std::vector<int> kRowSlot{-1, 0, 2, 0, -1, 1, 2, 2, -1, 0, 1, -1, 2};  // T 13, three adapters + base rows
constexpr int kSlots = 3;
constexpr int64_t kMaxRank = 8;
const std::vector<int32_t> kRanks{3, 8, 5};  // below and at max_rank, different per slot and slice

// Runs the column and the row projection of toy_spec on tp ranks and returns the worst relative error.
// `break_b_offsets`: cut every slice's B at the fused projection's even split (a slice cut at the wrong offset).
// `skip_shrink_reduce`: compute the row projection with the shrink not summed over ranks.
struct ToyResult {
  double column = 0, row = 0;
};
ToyResult run_toy(int tp, bool break_b_offsets = false, bool skip_shrink_reduce = false) {
  std::mt19937 g(7 + tp);
  const ShardPlan plan = make_shard_plan(toy_spec(), tp);
  check_partition(plan);
  const ProjectionPlan& colp = plan.at("in_proj");
  const ProjectionPlan& rowp = plan.at("out_proj");
  const int64_t T = static_cast<int64_t>(kRowSlot.size());
  Segments seg(kRowSlot, kSlots);
  // Column: W [out 92, in 20] with a bias.
  const int64_t cout = colp.spec.out_features(), cin = colp.spec.in_features();
  Tensor wc = randn({cout, cin}, g, 0.3f), bc = randn({cout}, g), xc = randn({T, cin}, g);
  auto lc = lora_for(colp.spec, g, kSlots, kMaxRank, kRanks);
  Tensor yc = reference(xc, wc, bc, lc, seg.seg);
  // Row: W [13, 40] with a bias, input = the value heads.
  const int64_t rout = rowp.spec.out_features(), rin = rowp.spec.in_features();
  Tensor wr = randn({rout, rin}, g, 0.3f), br = randn({rout}, g), xr = randn({T, rin}, g);
  auto lr = lora_for(rowp.spec, g, kSlots, kMaxRank, kRanks);
  Tensor yr = reference(xr, wr, br, lr, seg.seg);

  ToyResult res;
  std::mutex mu;
  run_ranks(tp, [&](Communicator& comm) {
    ExecCtx ctx;
    const int r = comm.rank();
    LinearShard col = shard_projection(colp, r, wc, bc, lc);
    if (break_b_offsets) {
      // The bug class: each slice's B rows taken at this rank's even share of the slice, ignoring its parts.
      for (size_t k = 0; k < lc.size(); ++k) {
        const int64_t rows = col.lora[k].out_size, per = lc[k].out_size / tp;
        std::vector<Range> naive{{std::min<int64_t>(r * per, lc[k].out_size - rows), rows}};
        col.lora[k].B = gather_blocks(lc[k].B, {}, naive, {});
      }
    }
    Tensor y = Tensor::empty({T, col.weight.dim(0)});
    sharded_linear(ctx, comm, col, xc, seg.seg, y);
    const double dc = rel_diff(y, gather_blocks(yc, {}, {}, out_rows(colp.ranks[r])));

    LinearShard row = shard_projection(rowp, r, wr, br, lr);
    Tensor x_local = gather_blocks(xr, {}, {}, in_cols(rowp.ranks[r]));
    Tensor y2 = Tensor::empty({T, rout});
    if (skip_shrink_reduce) {
      // The bug class: base output all-reduced, the shrink left partial.
      ops::matmul_nt(ctx, x_local, row.weight, y2);
      comm.all_reduce_sum(y2);
      ops::add_bias(ctx, row.bias, y2);
      Tensor s = Tensor::empty({seg.seg.num_rows, 2, kMaxRank});
      ops::lora_shrink(ctx, x_local, seg.seg, row.lora_ptrs(), s);
      ops::lora_expand(ctx, s, seg.seg, row.lora_ptrs(), y2);
    } else {
      sharded_linear(ctx, comm, row, x_local, seg.seg, y2);
    }
    const double dr = rel_diff(y2, yr);
    std::lock_guard<std::mutex> lock(mu);
    res.column = std::max(res.column, dc);
    res.row = std::max(res.row, dr);
  });
  return res;
}

TEST(ShardedMath, ColumnAndRowParallelEqualUnshardedForTp1248) {
  for (int tp : {1, 2, 4, 8}) {
    const ToyResult r = run_toy(tp);
    std::cout << "tp " << tp << ": column max rel diff " << r.column << ", row " << r.row << "\n";
    EXPECT_LE(r.column, kTolerance) << "tp " << tp;
    EXPECT_LE(r.row, kTolerance) << "tp " << tp;
  }
}

TEST(ShardedMath, DetectsASliceCutAtTheWrongOffset) {
  const ToyResult r = run_toy(2, /*break_b_offsets=*/true);
  std::cout << "B cut at the wrong offsets: column max rel diff " << r.column << "\n";
  EXPECT_GT(r.column, 1e-2);
}

TEST(ShardedMath, DetectsARowParallelShrinkThatIsNotAllReduced) {
  const ToyResult r = run_toy(2, false, /*skip_shrink_reduce=*/true);
  std::cout << "shrink not all-reduced: row max rel diff " << r.row << "\n";
  EXPECT_GT(r.row, 1e-2);
}

// The in-process communicator: sums in rank order, gathers in rank order, broadcasts any dtype, strided views, and a
// failing rank ends the others' collectives with an error instead of a hang.
TEST(InProcessCommunicator, CollectivesAndFailure) {
  run_ranks(4, [](Communicator& c) {
    Tensor big = Tensor::empty({3, 5});
    for (int64_t i = 0; i < 15; ++i) big.f32()[i] = static_cast<float>(c.rank() * 100 + i);
    Tensor view = big.cols(1, 3);  // strided [3, 3]
    c.all_reduce_sum(view);
    EXPECT_EQ(view.f32()[0], 0 + 100 + 200 + 300 + 4.0f * 1);
    EXPECT_EQ(big.f32()[0], static_cast<float>(c.rank() * 100));  // outside the view: untouched
    Tensor local = Tensor::empty({2});
    local.f32()[0] = static_cast<float>(c.rank());
    local.f32()[1] = -static_cast<float>(c.rank());
    Tensor all = Tensor::empty({8});
    c.all_gather(local, all);
    EXPECT_EQ(all.f32()[6], 3.0f);
    EXPECT_EQ(all.f32()[7], -3.0f);
    Tensor meta = Tensor::empty({3}, DType::I32);
    for (int i = 0; i < 3; ++i) meta.i32()[i] = c.rank() == 2 ? 40 + i : -1;
    c.broadcast(meta, 2);
    EXPECT_EQ(meta.i32()[1], 41);
    Tensor cols = Tensor::empty({2, 4});
    Tensor mine = Tensor::empty({2, 1});
    mine.f32()[0] = static_cast<float>(c.rank());
    mine.f32()[1] = static_cast<float>(10 + c.rank());
    all_gather_columns(c, mine, cols);
    EXPECT_EQ(cols.f32()[2], 2.0f);
    EXPECT_EQ(cols.f32()[4 + 3], 13.0f);
  });
  std::string e;
  try {
    run_ranks(3, [](Communicator& c) {
      Tensor t = Tensor::zeros({4});
      if (c.rank() == 1) fail("GPU 1 is missing");
      c.all_reduce_sum(t);  // ranks 0 and 2 would wait forever without the abort
    });
  } catch (const Error& x) {
    e = x.what();
  }
  EXPECT_EQ(e, "rank 1: GPU 1 is missing");
}

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
    ops::moe_permute(ctx, lid, row_slot, sgu.weight.dim(0), perm);
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
      comm.all_reduce_sum(out);  // the MoE block's one all-reduce
      const double d = rel_diff(out, ref);
      std::lock_guard<std::mutex> lock(mu);
      worst = std::max(worst, d);
    });
    std::cout << "expert MLP tp " << tp << " ep " << ep << ": max rel diff " << worst << "\n";
    EXPECT_LE(worst, kTolerance) << "tp " << tp << " ep " << ep;
  }
}

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
      all_gather_columns(comm, local, logits);
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

namespace hylora::dist {
namespace {

// Back-to-back collectives of 8 ranks (each rank reuses and overwrites its buffers right after a call returns): a
// rank that raced ahead into the next collective while another still read its previous tensor would corrupt a sum.
TEST(InProcessCommunicator, ManyBackToBackCollectivesStayExact) {
  constexpr int kRanks = 8, kRounds = 300;
  run_ranks(kRanks, [](Communicator& c) {
    Tensor t = Tensor::empty({5});
    Tensor meta = Tensor::empty({2}, DType::I32);
    for (int round = 0; round < kRounds; ++round) {
      for (int i = 0; i < 5; ++i) t.f32()[i] = static_cast<float>(c.rank() + round * i);
      c.all_reduce_sum(t);
      // Σ_r (r + round·i) = 28 + 8·round·i, exact in float32 for these sizes.
      // A mismatch throws (not ASSERT: an early return would leave the other ranks waiting in the next collective).
      for (int i = 0; i < 5; ++i)
        if (t.f32()[i] != static_cast<float>(28 + 8 * round * i))
          fail("round ", round, ": sum ", t.f32()[i], ", expected ", 28 + 8 * round * i);
      meta.i32()[0] = c.rank() == round % kRanks ? round : -1;
      c.broadcast(meta, round % kRanks);
      if (meta.i32()[0] != round) fail("round ", round, ": broadcast gave ", meta.i32()[0]);
    }
  });
}

}  // namespace
}  // namespace hylora::dist
