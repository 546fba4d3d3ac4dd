// The shard specs written from config.json match what the model files declare: on every tiny fixture model (all
// four architectures, dense / MoE / latent / with and without q_lora_rank, tied heads), the plan's projections are
// exactly the model's LoRA targets — names, shapes, slices and slice offsets — and the plan partitions them for
// tp 1 and 2 (with ep 1 and 2).
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/error.h"
#include "dist/model_shard_specs.h"
#include "dist/plan_check.h"
#include "models/model.h"

namespace hylora::dist {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> fixture_models() {
  std::set<fs::path> dirs;  // sorted, so the test order is stable
  for (const auto& e : fs::directory_iterator(HYLORA_FIXTURES_DIR))
    if (fs::exists(e.path() / "model" / "config.json")) dirs.insert(e.path() / "model");
  return {dirs.begin(), dirs.end()};
}

TEST(ShardPlanVsModel, EveryFixtureModelsDeclaredTargetsMatchThePlan) {
  std::set<std::string> architectures;
  int models = 0;
  for (const fs::path& dir : fixture_models()) {
    SCOPED_TRACE(dir.string());
    std::unique_ptr<Model> model = load_model(dir.string());
    const ModelShardSpec spec = model_shard_spec_from_file((dir / "config.json").string());
    EXPECT_EQ(spec.architecture, model->architecture());
    architectures.insert(model->architecture());
    for (int tp : {1, 2})
      for (int ep : {1, tp}) {
        const ShardPlan plan = make_shard_plan(spec, tp, ep);
        EXPECT_NO_THROW(check_partition(plan));
        EXPECT_NO_THROW(check_against_model(plan, model->lora_targets()));
      }
    ++models;
  }
  EXPECT_GE(models, 20);
  for (const char* a : {"Qwen3_5ForCausalLM", "Qwen3_5MoeForCausalLM", "NemotronHForCausalLM", "DeepseekV3ForCausalLM",
                        "Qwen3ForCausalLM", "Qwen3MoeForCausalLM"})
    EXPECT_TRUE(architectures.count(a)) << a;
}

TEST(ShardPlanVsModel, ADriftedSpecIsCaught) {
  const fs::path dir = fs::path(HYLORA_FIXTURES_DIR) / "nemotron_h_latent" / "model";
  std::unique_ptr<Model> model = load_model(dir.string());
  const ModelShardSpec good = model_shard_spec_from_file((dir / "config.json").string());
  auto check = [&](const ModelShardSpec& s) {
    try {
      check_against_model(make_shard_plan(s, 1), model->lora_targets());
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  ASSERT_EQ(check(good), "(no error)");
  ModelShardSpec s = good;  // the Mamba in_proj's dt part one row short
  for (ProjectionSpec& p : s.projections)
    if (p.name == "model.layers.0.mixer.in_proj") p.slices[0].parts.back().units -= 1;
  EXPECT_NE(check(s).find("model.layers.0.mixer.in_proj: the model declares"), std::string::npos) << check(s);
  s = good;  // q and k slices swapped
  for (ProjectionSpec& p : s.projections)
    if (p.name == "model.layers.2.mixer.qkv") std::swap(p.slices[0], p.slices[1]);
  EXPECT_NE(check(s).find("slice 0 is model.layers.2.mixer.q_proj"), std::string::npos) << check(s);
  s = good;  // a projection the model does not declare
  s.projections.push_back(spec_parts::replicated("model.layers.0.mixer.extra", 4, 4));
  EXPECT_NE(check(s).find("the shard spec has"), std::string::npos) << check(s);
}

}  // namespace
}  // namespace hylora::dist
