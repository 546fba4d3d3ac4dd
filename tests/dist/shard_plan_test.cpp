// The shard plan on the real models' shapes (issue 8 item 6): for tp = 1, 2, 4, 8 (and ep = 1, 2, tp) every
// projection of every config in bench/configs is partitioned exactly, fused projections cut slice by slice at each
// part's own offset; hand-computed ranges for one projection of each kind; clear errors for sizes that don't divide.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/error.h"
#include "dist/model_shard_specs.h"
#include "dist/plan_check.h"
#include "dist/shard_model.h"
#include "dist/shard_plan.h"

namespace hylora::dist {
namespace {

namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

ModelShardSpec bench(const std::string& name) {
  return model_shard_spec_from_file((fs::path(HYLORA_BENCH_CONFIGS_DIR) / (name + ".json")).string());
}

// The first projection whose name ends with `suffix`.
const ProjectionPlan& find_suffix(const ShardPlan& plan, const std::string& suffix) {
  for (const ProjectionPlan& p : plan.projections)
    if (p.spec.name.size() >= suffix.size() && p.spec.name.compare(p.spec.name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return p;
  throw std::runtime_error("no projection ending in " + suffix);
}

std::vector<Range> rows_of(const RankShard& r, size_t slice) {
  std::vector<Range> out;
  for (const PartShard& p : r.slices.at(slice)) out.push_back(p.rows);
  return out;
}

// Every split part's count in rank r's per-rank config (dist::local_config) is the units the plan gives rank r: the
// field the part names (`dimension`, or `local_field` for a derived width such as DeepSeek's shared experts), so
// two parts that share a field but not a split (DeepSeek's routed experts under --ep vs its shared experts) fail.
void expect_local_config_matches_plan(const json& config, const ShardPlan& plan) {
  for (int r = 0; r < plan.tp; ++r) {
    const json local = local_config(config, plan, r);
    const json& fields = local.contains("text_config") ? local["text_config"] : local;
    for (const ProjectionPlan& p : plan.projections) {
      auto check = [&](const PartSpec& part, const PartShard& shard) {
        if (part.policy == UnitPolicy::kWhole || part.dimension == "vocab_size") return;
        const std::string field = part.local_field.empty() ? part.dimension : part.local_field;
        ASSERT_TRUE(fields.contains(field)) << p.spec.name << ": rank " << r << " config lacks " << field;
        EXPECT_EQ(fields[field].get<int64_t>(), shard.units.size)
            << p.spec.name << " part " << part.name << ": rank " << r << "'s " << field;
      };
      for (size_t k = 0; k < p.spec.slices.size(); ++k)
        for (size_t q = 0; q < p.spec.slices[k].parts.size(); ++q) check(p.spec.slices[k].parts[q], p.ranks[r].slices[k][q]);
      for (size_t q = 0; q < p.spec.in_parts.size(); ++q) check(p.spec.in_parts[q], p.ranks[r].in_parts[q]);
    }
  }
}

// The config with its vocabulary one token smaller: no real config's vocabulary is odd, every tp > 1 then splits it
// unevenly (multi_gpu.md §2.1).
json with_odd_vocabulary(json j) {
  json& fields = j.contains("text_config") ? j["text_config"] : j;
  fields["vocab_size"] = fields["vocab_size"].get<int64_t>() - 1;
  return j;
}

TEST(ShardPlan, EveryBenchConfigPartitionsExactlyForTp1248) {
  int configs = 0;
  for (const auto& entry : fs::directory_iterator(HYLORA_BENCH_CONFIGS_DIR)) {
    if (entry.path().extension() != ".json") continue;
    ++configs;
    std::ifstream in(entry.path());
    const json config = json::parse(in);
    for (const json& variant : {config, with_odd_vocabulary(config)})
    for (int tp : {1, 2, 4, 8})
      for (int ep : {1, 2, tp}) {
        if (tp % ep) continue;
        const bool odd = variant != config;
        SCOPED_TRACE(entry.path().filename().string() + (odd ? " (vocab − 1)" : "") + " tp " + std::to_string(tp) +
                     " ep " + std::to_string(ep));
        const ModelShardSpec spec = model_shard_spec(variant, entry.path().string());
        const ShardPlan plan = make_shard_plan(spec, tp, ep);
        ASSERT_NO_THROW(check_partition(plan));
        expect_local_config_matches_plan(variant, plan);
        for (const ProjectionPlan& p : plan.projections) {
          // Every rank's local shape is the sum of its parts, and the ranks together hold the whole projection
          // (column: out_local · d = out unless units are replicated; row: in_local · d = in).
          int64_t out_sum = 0, in_sum = 0;
          for (int r = 0; r < static_cast<int>(p.divisor); ++r) {
            out_sum += p.ranks[r].out_local();
            in_sum += p.ranks[r].in_local();
          }
          const int64_t d = p.divisor, out = p.spec.out_features(), in = p.spec.in_features();
          if (p.parallel == Parallel::kRow) {
            EXPECT_EQ(in_sum, in) << p.spec.name;
            EXPECT_EQ(out_sum, out * d) << p.spec.name;
          } else if (p.parallel == Parallel::kReplicated) {
            EXPECT_EQ(out_sum, out * d) << p.spec.name;
          } else {
            EXPECT_GE(out_sum, out) << p.spec.name;  // equal unless KV / key heads are replicated
            EXPECT_EQ(in_sum, in * d) << p.spec.name;
          }
        }
      }
  }
  EXPECT_EQ(configs, 7);
}

TEST(ShardPlan, Mamba2InProjAndConvAreCutAtTheirOwnParts) {
  // Nemotron-3-Super: nh 128 × hd 64 (I 8192), G 8 × N 128: in_proj rows [z 8192 | x 8192 | B 1024 | C 1024 | dt 128].
  const ShardPlan plan = make_shard_plan(bench("nemotron_3_super_120b_a12b"), 4);
  const ProjectionPlan& in = find_suffix(plan, ".mixer.in_proj");
  EXPECT_EQ(in.parallel, Parallel::kColumn);
  EXPECT_EQ(in.spec.slices.size(), 1u);  // one LoRA slice, five parts
  const std::vector<Range> want{{2048, 2048}, {8192 + 2048, 2048}, {16384 + 256, 256}, {17408 + 256, 256}, {18432 + 32, 32}};
  EXPECT_EQ(rows_of(in.ranks[1], 0), want);
  EXPECT_EQ(in.ranks[1].out_local(), 18560 / 4);
  const std::string mixer = in.spec.name.substr(0, in.spec.name.size() - std::string("in_proj").size());
  const ProjectionPlan& conv = plan.at(mixer + "conv1d.weight");
  EXPECT_EQ(rows_of(conv.ranks[1], 0), (std::vector<Range>{{2048, 2048}, {8192 + 256, 256}, {9216 + 256, 256}}));
  const ProjectionPlan& out = plan.at(mixer + "out_proj");
  EXPECT_EQ(out.parallel, Parallel::kRow);
  EXPECT_EQ(out.ranks[1].in_parts[0].rows, (Range{2048, 2048}));
  // Latent MoE: fc1/fc2 replicated, experts by expert under ep.
  const ShardPlan ep = make_shard_plan(bench("nemotron_3_super_120b_a12b"), 4, 4);
  EXPECT_EQ(find_suffix(ep, ".fc1_latent_proj").parallel, Parallel::kReplicated);
  const ProjectionPlan& up = find_suffix(ep, ".experts.up_proj");
  EXPECT_EQ(up.ranks[3].experts, (Range{384, 128}));
  EXPECT_EQ(up.ranks[3].out_local(), 2688);  // whole expert
}

TEST(ShardPlan, GdnInProjIsCutSliceBySliceByKeyAndValueHeads) {
  // Qwen3.5-27B: Hk 16 × Dk 128, Hv 48 × Dv 128: in_proj rows [q 2048 | k 2048 | v 6144 | z 6144 | b 48 | a 48].
  const ShardPlan plan = make_shard_plan(bench("qwen3_5_27b"), 4);
  const ProjectionPlan& in = find_suffix(plan, ".linear_attn.in_proj");
  ASSERT_EQ(in.spec.slices.size(), 4u);
  const RankShard& r2 = in.ranks[2];
  EXPECT_EQ(rows_of(r2, 0), (std::vector<Range>{{1024, 512}, {2048 + 1024, 512}, {4096 + 3072, 1536}}));
  EXPECT_EQ(rows_of(r2, 1), (std::vector<Range>{{10240 + 3072, 1536}}));
  EXPECT_EQ(rows_of(r2, 2), (std::vector<Range>{{16384 + 24, 12}}));
  EXPECT_EQ(rows_of(r2, 3), (std::vector<Range>{{16432 + 24, 12}}));
}

TEST(ShardPlan, KvHeadsAreReplicatedWhenFewerThanRanks) {
  // Qwen3.5-35B-A3B: nH 16 (query+gate 512 rows per head), nKV 2 × 256. With tp 8, rank r holds KV head r / 4.
  const ShardPlan plan = make_shard_plan(bench("qwen3_5_35b_a3b"), 8);
  const ProjectionPlan& qkv = find_suffix(plan, ".self_attn.qkv");
  EXPECT_EQ(rows_of(qkv.ranks[5], 0), (std::vector<Range>{{5 * 1024, 1024}}));
  EXPECT_EQ(rows_of(qkv.ranks[5], 1), (std::vector<Range>{{8192 + 256, 256}}));
  EXPECT_EQ(rows_of(qkv.ranks[3], 2), (std::vector<Range>{{8192 + 512, 256}}));
  EXPECT_NO_THROW(check_partition(make_shard_plan(bench("qwen3_5_35b_a3b"), 16)));  // 8 ranks per KV head
  // What rank 5's attention forward and KV pool are sized by: 2 query heads [10, 12), KV head 1.
  EXPECT_EQ(plan.units("model.layers.3.self_attn/heads", 5), (Range{10, 2}));
  EXPECT_EQ(plan.units("model.layers.3.self_attn/kv_heads", 5), (Range{1, 1}));
  EXPECT_EQ(plan.units("model.layers.0.linear_attn/value_heads", 5), (Range{20, 4}));
  EXPECT_NE(error_of([&] { plan.units("model.layers.0.self_attn/heads", 0); }).find("no unit family"), std::string::npos);
}

TEST(ShardPlan, MlaSplitsHeadsAndReplicatesTheLatentProjections) {
  // DeepSeek-V3: nH 128, Dqk 192, Dn + Dv 256, Dv 128.
  const ShardPlan plan = make_shard_plan(bench("deepseek_v3"), 8, 2);
  EXPECT_EQ(find_suffix(plan, ".self_attn.fused_qkv_a").parallel, Parallel::kReplicated);
  EXPECT_EQ(rows_of(find_suffix(plan, ".self_attn.q_b_proj").ranks[3], 0), (std::vector<Range>{{3 * 16 * 192, 16 * 192}}));
  EXPECT_EQ(rows_of(find_suffix(plan, ".self_attn.kv_b_proj").ranks[3], 0), (std::vector<Range>{{3 * 16 * 256, 16 * 256}}));
  EXPECT_EQ(find_suffix(plan, ".self_attn.o_proj").ranks[3].in_parts[0].rows, (Range{3 * 2048, 2048}));
  // ep 2 of tp 8: moe_tp 4. Rank 6 = ep group 1 (experts [128, 256)), index 2 in the group.
  const ProjectionPlan& gu = find_suffix(plan, ".experts.gate_up_proj");
  EXPECT_EQ(gu.ranks[6].experts, (Range{128, 128}));
  EXPECT_EQ(rows_of(gu.ranks[6], 0), (std::vector<Range>{{1024, 512}}));
  EXPECT_EQ(rows_of(gu.ranks[6], 1), (std::vector<Range>{{2048 + 1024, 512}}));
  EXPECT_EQ(find_suffix(plan, ".experts.down_proj").ranks[6].in_parts[0].rows, (Range{1024, 512}));
  EXPECT_EQ(find_suffix(plan, ".mlp.gate").parallel, Parallel::kReplicated);
  // Vocabulary: lm_head by rows, the embedding by its table rows (the one-hot input).
  EXPECT_EQ(plan.at("lm_head").ranks[7].slices[0][0].rows, (Range{7 * 16160, 16160}));
  EXPECT_EQ(plan.at("model.embed_tokens").ranks[7].in_parts[0].rows, (Range{7 * 16160, 16160}));
  EXPECT_EQ(plan.at("model.embed_tokens").parallel, Parallel::kRow);
}

TEST(ShardPlan, LoraRulesFollowTheParallelKind) {
  EXPECT_TRUE(lora_rule(Parallel::kColumn).b_sharded_by_slice_rows);
  EXPECT_FALSE(lora_rule(Parallel::kColumn).a_sharded_by_input);
  EXPECT_TRUE(lora_rule(Parallel::kRow).a_sharded_by_input);
  EXPECT_TRUE(lora_rule(Parallel::kRow).shrink_all_reduced);
  EXPECT_FALSE(lora_rule(Parallel::kRow).b_sharded_by_slice_rows);
  EXPECT_FALSE(lora_rule(Parallel::kReplicated).shrink_all_reduced);
}

TEST(ShardPlan, SizesThatDoNotDivideAreRefusedNamingTheDimension) {
  // The vocabulary (248320 = 3 · 82773 + 1) is split unevenly; the heads are what refuse --tp 3.
  std::string e = error_of([] { make_shard_plan(bench("qwen3_5_4b"), 3); });
  EXPECT_NE(e.find("--tp 3: linear_num_key_heads = 16 is neither divisible by 3"), std::string::npos) << e;
  EXPECT_EQ(e.find("vocab_size"), std::string::npos) << e;
  EXPECT_NE(e.find("qwen3_5_4b.json"), std::string::npos) << e;
  e = error_of([] { make_shard_plan(bench("qwen3_5_27b"), 16); });
  EXPECT_NE(e.find("num_attention_heads = 24 is not divisible by 16"), std::string::npos) << e;
  EXPECT_NE(e.find("self_attn.q_proj"), std::string::npos) << e;
  e = error_of([] { make_shard_plan(bench("nemotron_3_nano_30b_a3b"), 16); });
  EXPECT_NE(e.find("n_groups = 8 is not divisible by 16"), std::string::npos) << e;
  EXPECT_NE(e.find("gated RMSNorm"), std::string::npos) << e;
  e = error_of([] { make_shard_plan(bench("deepseek_v3"), 4, 3); });
  EXPECT_NE(e.find("--ep 3 must be at least 1 and divide --tp 4"), std::string::npos) << e;
  // Fewer KV heads than ranks but not a divisor: neither split nor replicated.
  std::ifstream in(fs::path(HYLORA_BENCH_CONFIGS_DIR) / "qwen3_5_35b_a3b.json");
  json j = json::parse(in);
  j["text_config"]["num_attention_heads"] = 24;
  j["text_config"]["num_key_value_heads"] = 3;
  j["text_config"]["num_experts"] = 24;
  e = error_of([&] { make_shard_plan(model_shard_spec(j, "cfg"), 8); });
  EXPECT_NE(e.find("num_key_value_heads = 3 is neither divisible by 8 nor a divisor of it"), std::string::npos) << e;
  j["text_config"]["num_key_value_heads"] = 2;
  e = error_of([&] { make_shard_plan(model_shard_spec(j, "cfg"), 16, 16); });
  EXPECT_NE(e.find("--ep 16: num_experts = 24 is not divisible by 16"), std::string::npos) << e;
}

// A vocabulary that does not divide by the ranks: contiguous ranges in rank order, as even as it goes (sizes differ
// by at most one, the larger first), the embedding's and lm_head's ranges equal (a tied head shares the table's
// shard), every id held once; fewer ids than ranks is refused; a wrong uneven cut is caught by the checker.
TEST(ShardPlan, VocabularyThatDoesNotDivideIsSplitUnevenly) {
  for (int64_t V : {7, 253, 509, 129281, 248319}) {
    ModelShardSpec spec;
    spec.where = "toy vocabulary";
    spec.projections = {spec_parts::embedding("emb", V, 16), spec_parts::lm_head(V, 16)};
    for (int tp = 1; tp <= 8; ++tp) {
      if (V < tp) continue;
      SCOPED_TRACE("V " + std::to_string(V) + " tp " + std::to_string(tp));
      const ShardPlan plan = make_shard_plan(spec, tp);
      ASSERT_NO_THROW(check_partition(plan));
      int64_t next = 0;
      for (int r = 0; r < tp; ++r) {
        const Range ids = plan.at("emb").ranks[r].in_parts[0].rows;
        EXPECT_EQ(ids, plan.at("lm_head").ranks[r].slices[0][0].rows);
        EXPECT_EQ(ids.begin, next);
        EXPECT_EQ(ids.size, V / tp + (r < V % tp ? 1 : 0));
        next = ids.end();
      }
      EXPECT_EQ(next, V);
    }
  }
  ModelShardSpec tiny;
  tiny.where = "toy vocabulary";
  tiny.projections = {spec_parts::embedding("emb", 3, 16)};
  const std::string e = error_of([&] { make_shard_plan(tiny, 4); });
  EXPECT_NE(e.find("--tp 4: vocab_size = 3 is smaller than 4"), std::string::npos) << e;
  // 253 over 4: 64, 63, 63, 63. An even-split-style cut (63 on rank 0, 64 on rank 3) partitions the ids but is not
  // the uneven rule the forward's gather widths follow.
  ModelShardSpec spec;
  spec.where = "toy vocabulary";
  spec.projections = {spec_parts::lm_head(253, 16)};
  ShardPlan bad = make_shard_plan(spec, 4);
  EXPECT_NO_THROW(check_partition(bad));
  for (int r = 0; r < 4; ++r) {
    PartShard& s = bad.projections[0].ranks[r].slices[0][0];
    s.units = {r * 63, r == 3 ? 64 : 63};
    s.rows = s.units;
  }
  EXPECT_NE(error_of([&] { check_partition(bad); }).find("units, expected 64"), std::string::npos);
}

// The checker itself catches the mistakes it exists for (a test of the test).
TEST(ShardPlan, CheckPartitionCatchesWrongOffsetsOverlapsAndMissingParents) {
  const ShardPlan good = make_shard_plan(bench("nemotron_3_super_120b_a12b"), 4);
  auto mutate = [&](const std::function<void(ShardPlan&)>& f) {
    ShardPlan p = good;
    f(p);
    return error_of([&] { check_partition(p); });
  };
  auto in_proj = [](ShardPlan& p) -> ProjectionPlan& {
    for (ProjectionPlan& x : p.projections)
      if (x.spec.name.find(".mixer.in_proj") != std::string::npos) return x;
    throw std::runtime_error("none");
  };
  // B cut at an even split of the fused rows instead of at the B part's own offset.
  std::string e = mutate([&](ShardPlan& p) { in_proj(p).ranks[1].slices[0][2].rows.begin += 128; });
  EXPECT_NE(e.find("own offset"), std::string::npos) << e;
  // Two ranks holding the same heads (and none holding others).
  e = mutate([&](ShardPlan& p) {
    PartShard& z = in_proj(p).ranks[1].slices[0][0];
    z.units.begin = 0;
    z.rows.begin = 0;
  });
  EXPECT_NE(e.find("held by"), std::string::npos) << e;
  // Heads on one rank whose groups live elsewhere (every part of the heads family moved consistently).
  e = mutate([&](ShardPlan& p) {
    for (ProjectionPlan& x : p.projections) {
      if (x.spec.name.rfind("model.layers.0.mixer", 0) != 0) continue;
      for (size_t s = 0; s < x.spec.slices.size(); ++s)
        for (size_t k = 0; k < x.spec.slices[s].parts.size(); ++k)
          if (x.spec.slices[s].parts[k].family.find("/heads") != std::string::npos)
            std::swap(x.ranks[0].slices[s][k], x.ranks[3].slices[s][k]);
      for (size_t k = 0; k < x.spec.in_parts.size(); ++k)
        if (x.spec.in_parts[k].family.find("/heads") != std::string::npos)
          std::swap(x.ranks[0].in_parts[k], x.ranks[3].in_parts[k]);
    }
  });
  EXPECT_NE(e.find("which read"), std::string::npos) << e;
}

}  // namespace
}  // namespace hylora::dist

namespace hylora::dist {
namespace {

// The specs' shapes against the published sizes (an independent check that the config → shapes builders miss no
// projection and size none wrong), and the per-rank weight floor the plan gives (issue 8 item 5's "per-GPU bytes").
TEST(ShardPlan, ParameterCountsMatchPublishedSizes) {
  struct Known {
    const char* config;
    double billions;  // published total (text model; MTP layers excluded)
    double tolerance;  // relative: vision towers and norms are not in the plan
  };
  for (const Known& k : std::vector<Known>{{"deepseek_v3", 671, 0.01},
                                           {"kimi_k2", 1026, 0.02},
                                           {"nemotron_3_super_120b_a12b", 120, 0.05},
                                           {"nemotron_3_nano_30b_a3b", 31.6, 0.05},
                                           {"qwen3_5_35b_a3b", 35, 0.05},
                                           {"qwen3_5_27b", 27, 0.05}}) {
    const ModelShardSpec spec = bench(k.config);
    const double total = static_cast<double>(rank_parameters(make_shard_plan(spec, 1), 0)) / 1e9;
    EXPECT_NEAR(total, k.billions, k.billions * k.tolerance) << k.config;
    for (int tp : {2, 8}) {
      const ShardPlan plan = make_shard_plan(spec, tp, tp);
      int64_t worst = 0;
      for (int r = 0; r < tp; ++r) worst = std::max(worst, rank_parameters(plan, r));
      std::cout << k.config << ": " << total << " B parameters; tp " << tp << " (ep " << tp << "): "
                << static_cast<double>(worst) * 2 / 1e9 << " GB bf16 per GPU\n";
      EXPECT_GE(static_cast<double>(worst) / 1e9, total / tp);  // replicated parts only add
      EXPECT_LE(static_cast<double>(worst) / 1e9, total / tp * 1.10) << k.config << " tp " << tp;
    }
  }
}

}  // namespace
}  // namespace hylora::dist
