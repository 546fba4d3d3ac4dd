// The models' vocabulary-parallel forward (models/tp_linear_forward.cpp) on a vocabulary that no rank count from 2
// to 8 divides (docs/multi_gpu.md §1, §6.1): V = 37 over 1..8 in-process ranks. Each rank holds its plan's rows of
// lm_head (with Linear::gather_widths as dist::bind_shard sets them) and of the embedding table; the gathered logits
// [T, V] and the summed lookup [T, H] equal the unsharded GEMM and lookup on every rank. The golden fixtures cannot
// run tp 3, 5, 6, 7 (their head counts do not divide); this runs the same code at those N.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <random>

#include "dist/in_process_communicator.h"
#include "dist/model_shard_specs.h"
#include "dist/shard_plan.h"
#include "models/forward_args.h"
#include "models/linear.h"
#include "models/linear_forward.h"
#include "ops/elementwise.h"
#include "ops/linear.h"

namespace hylora::dist {
namespace {

Tensor randn(Shape shape, std::mt19937& g) {
  Tensor t = Tensor::empty(std::move(shape));
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = n(g);
  return t;
}

Tensor rows_of(const Tensor& t, Range r) { return t.rows(r.begin, r.end()).clone(); }

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double worst = 0;
  for (int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i)
    worst = std::max(worst, static_cast<double>(std::fabs(a.f32()[i] - b.f32()[i])));
  return worst;
}

TEST(UnevenVocabulary, LmHeadGatherAndEmbeddingEqualUnshardedOverOneToEightRanks) {
  const int64_t V = 37, H = 12, T = 9;
  std::mt19937 g(3);
  const Tensor table = randn({V, H}, g), head = randn({V, H}, g), x = randn({T, H}, g);
  Tensor ids = Tensor::empty({T}, DType::I32);
  for (int64_t t = 0; t < T; ++t) ids.i32()[t] = static_cast<int32_t>((t * 11 + 5) % V);  // ids on every rank
  Tensor logits_ref = Tensor::empty({T, V}), lookup_ref = Tensor::empty({T, H});
  {
    ExecCtx ctx;
    ops::matmul_nt(ctx, x, head, logits_ref);
    ops::embedding(ctx, table, ids, lookup_ref);
  }
  ModelShardSpec spec;
  spec.where = "toy vocabulary";
  spec.projections = {spec_parts::embedding("emb", V, H), spec_parts::lm_head(V, H)};
  for (int tp = 1; tp <= 8; ++tp) {
    const ShardPlan plan = make_shard_plan(spec, tp);
    std::vector<int64_t> widths;
    for (const RankShard& r : plan.at("lm_head").ranks) widths.push_back(r.out_local());
    if (tp > 1) {
      EXPECT_NE(widths.front(), widths.back()) << "tp " << tp << ": 37 should not divide";
    }
    double worst_logits = 0, worst_lookup = 0;
    std::mutex mu;
    run_ranks(tp, [&](Communicator& comm) {
      const int r = comm.rank();
      ExecCtx ctx;
      StepTensors step;
      step.token_ids = ids;
      std::vector<LayerCache> caches;
      const ForwardArgs a{ctx, step, caches, nullptr, &comm};
      Linear lm;
      lm.name = "lm_head";
      lm.weight = rows_of(head, plan.at("lm_head").ranks[r].slices[0][0].rows);  // [V_r, H]
      lm.tp = TpRole::kGatherColumns;
      if (std::any_of(widths.begin(), widths.end(), [&](int64_t w) { return w != widths[0]; })) lm.gather_widths = widths;
      Tensor logits = Tensor::empty({T, V});
      linear(a, lm, x, logits);
      Embedding emb;
      emb.module = "emb";
      const Range vocab = plan.at("emb").ranks[r].in_parts[0].rows;
      emb.table = rows_of(table, vocab);  // [V_r, H]
      emb.vocab_split = true;
      emb.vocab_begin = vocab.begin;
      Tensor lookup = Tensor::empty({T, H});
      embed(a, emb, lookup);
      std::lock_guard<std::mutex> lock(mu);
      worst_logits = std::max(worst_logits, max_abs_diff(logits, logits_ref));
      worst_lookup = std::max(worst_lookup, max_abs_diff(lookup, lookup_ref));
    });
    // Each logit is one rank's own dot product over the whole H (a GEMM of another width may round it differently
    // in the last bit); each lookup is one rank's row plus zeros from the others: exact.
    EXPECT_LE(worst_logits, 1e-5) << "tp " << tp;
    EXPECT_EQ(worst_lookup, 0.0) << "tp " << tp;
  }
}

}  // namespace
}  // namespace hylora::dist
