// DeepSeek-V3 model on the tiny golden-fixture checkpoints: fused and per-expert expert tensors load to the same
// numbers, MTP layers past num_hidden_layers are skipped, decoding / chunked prefill equal one prefill, and the LoRA
// targets are declared as lora.md §2 says. Exactness against HF is golden_test's job.
#include <gtest/gtest.h>

#include "test_support.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "engine/scorer.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "models/model.h"

using namespace hylora;
namespace fs = std::filesystem;

namespace {

const int64_t E = 8, Ie = 32, H = 64, V = 256;

fs::path fixture(const std::string& name) { return fs::path(HYLORA_FIXTURES_DIR) / name / "model"; }

std::map<std::string, Tensor> read_all(const fs::path& dir) {
  Checkpoint ck = Checkpoint::open_dir(dir.string());
  std::map<std::string, Tensor> w;
  for (auto& [name, info] : ck.tensors()) w[name] = ck.to_f32(name);
  return w;
}

fs::path write_model(const std::string& tag, const fs::path& config_from, const std::map<std::string, Tensor>& w) {
  fs::path dir = fs::temp_directory_path() / ("hylora_deepseek_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(config_from / "config.json", dir / "config.json");
  write_safetensors((dir / "model.safetensors").string(), w);
  return dir;
}

std::vector<ScoreResult> score(Model& m, int64_t chunk, int64_t budget) {
  return test_support::score_with(m, test_support::random_requests(V, 5), chunk, budget);
}
using test_support::max_diff;

#define REQUIRE_FIXTURE(name) \
  ASSERT_TRUE(fs::exists(fixture(name) / "config.json")) << "fixture " << name << " missing (fixtures are committed)"

}  // namespace

TEST(DeepseekV3Model, FusedExpertsAndMtpLayersLoadToTheSameNumbers) {
  REQUIRE_FIXTURE("deepseek_v3_qlora");
  auto base = load_model(fixture("deepseek_v3_qlora").string());  // per-expert tensors
  auto w = read_all(fixture("deepseek_v3_qlora"));
  for (int layer : {1, 2}) {
    const std::string ex = "model.layers." + std::to_string(layer) + ".mlp.experts.";
    Tensor gu = Tensor::empty({E, 2 * Ie, H}), dn = Tensor::empty({E, H, Ie});
    for (int64_t e = 0; e < E; ++e) {
      const std::string p = ex + std::to_string(e) + ".";
      std::copy_n(w.at(p + "gate_proj.weight").f32(), Ie * H, gu.f32() + e * 2 * Ie * H);
      std::copy_n(w.at(p + "up_proj.weight").f32(), Ie * H, gu.f32() + (e * 2 + 1) * Ie * H);
      std::copy_n(w.at(p + "down_proj.weight").f32(), H * Ie, dn.f32() + e * H * Ie);
      for (const char* part : {"gate_proj", "up_proj", "down_proj"}) w.erase(p + part + ".weight");
    }
    w[ex + "gate_up_proj"] = gu;
    w[ex + "down_proj"] = dn;
  }
  // An MTP layer as the hub checkpoint stores it (index num_hidden_layers = 3): skipped.
  w["model.layers.3.eh_proj.weight"] = Tensor::zeros({H, 2 * H});
  w["model.layers.3.self_attn.q_a_proj.weight"] = Tensor::zeros({32, H});
  w["model.layers.3.shared_head.head.weight"] = Tensor::zeros({V, H});
  auto fused = load_model(write_model("fused", fixture("deepseek_v3_qlora"), w).string());
  EXPECT_EQ(max_diff(score(*base, 512, 4096), score(*fused, 512, 4096)), 0.0);
  EXPECT_EQ(fused->unserved_prefixes(), std::vector<std::string>{"model.layers.3."});
}

TEST(DeepseekV3Model, UnusedTensorIsAnError) {
  REQUIRE_FIXTURE("deepseek_v3_no_qlora");
  auto w = read_all(fixture("deepseek_v3_no_qlora"));
  w["model.layers.0.mlp.experts.0.up_proj.weight"] = Tensor::zeros({Ie, H});  // layer 0 is dense
  try {
    load_model(write_model("unused", fixture("deepseek_v3_no_qlora"), w).string());
    ADD_FAILURE() << "loaded a checkpoint with a tensor the config does not use";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.0.mlp.experts.0.up_proj.weight"), std::string::npos)
        << e.what();
  }
}

class DeepseekV3Steps : public ::testing::TestWithParam<std::string> {};

TEST_P(DeepseekV3Steps, DecodeAndChunksEqualPrefill) {
  REQUIRE_FIXTURE(GetParam());
  auto m = load_model(fixture(GetParam()).string());
  auto prefill = score(*m, 512, 4096);
  EXPECT_LT(max_diff(prefill, score(*m, 1, 4096)), 2e-5);  // token-by-token decode
  EXPECT_LT(max_diff(prefill, score(*m, 5, 12)), 2e-5);    // chunks packed across sequences
  double spread = 0;  // not trivially uniform
  for (auto& r : prefill)
    for (double v : r.logprobs) spread = std::max(spread, std::abs(v + std::log(static_cast<double>(V))));
  EXPECT_GT(spread, 0.5);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DeepseekV3Steps, ::testing::Values("deepseek_v3_qlora", "deepseek_v3_no_qlora"));

TEST(DeepseekV3Lora, TargetsAreDeclaredPerLoraMd) {
  REQUIRE_FIXTURE("deepseek_v3_qlora");
  auto m = load_model(fixture("deepseek_v3_qlora").string());
  const LoraTargets& t = m->lora_targets();
  std::map<std::string, const Linear*> by_name;
  for (auto* l : t.linears) by_name[l->name] = l;
  auto expect_slices = [&](const std::string& name, std::vector<LoraSlice> want) {
    ASSERT_TRUE(by_name.count(name)) << name;
    const Linear* l = by_name.at(name);
    ASSERT_EQ(l->slices.size(), want.size()) << name;
    int64_t end = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(l->slices[i].module, want[i].module) << name;
      EXPECT_EQ(l->slices[i].out_offset, want[i].out_offset) << name;
      EXPECT_EQ(l->slices[i].out_size, want[i].out_size) << name;
      end = want[i].out_offset + want[i].out_size;
    }
    EXPECT_EQ(end, l->out_features()) << name;
  };
  const std::string a = "model.layers.1.self_attn.";
  expect_slices(a + "fused_qkv_a", {{a + "q_a_proj", 0, 32}, {a + "kv_a_proj_with_mqa", 32, 24 + 8}});
  expect_slices(a + "q_b_proj", {{a + "q_b_proj", 0, 4 * 24}});
  expect_slices(a + "kv_b_proj", {{a + "kv_b_proj", 0, 4 * (16 + 16)}});
  expect_slices(a + "o_proj", {{a + "o_proj", 0, H}});
  const std::string d = "model.layers.0.mlp.";
  expect_slices(d + "gate_up", {{d + "gate_proj", 0, 96}, {d + "up_proj", 96, 96}});
  expect_slices(d + "down_proj", {{d + "down_proj", 0, H}});
  const std::string s = "model.layers.2.mlp.shared_experts.";
  expect_slices(s + "gate_up", {{s + "gate_proj", 0, Ie}, {s + "up_proj", Ie, Ie}});
  expect_slices(s + "down_proj", {{s + "down_proj", 0, H}});
  expect_slices("model.layers.2.mlp.gate", {{"model.layers.2.mlp.gate", 0, E}});
  expect_slices("lm_head", {{"lm_head", 0, V}});
  EXPECT_FALSE(by_name.count("model.layers.1.mlp.gate_up"));  // MoE layers have no dense MLP
  std::set<int> ids;
  for (auto* l : t.linears) EXPECT_TRUE(ids.insert(l->lora_id).second && l->lora_id >= 0);
  EXPECT_EQ(t.linears.size(), 3u * 4 + 2 + 2 * 3 + 1);
  ASSERT_EQ(t.experts.size(), 4u);
  const std::string ex = "model.layers.1.mlp.experts.";
  EXPECT_EQ(t.experts[0]->name, ex + "gate_up_proj");
  ASSERT_EQ(t.experts[0]->slices.size(), 2u);
  EXPECT_EQ(t.experts[0]->slices[0].module, ex + "gate_proj");
  EXPECT_EQ(t.experts[0]->slices[1].module, ex + "up_proj");
  EXPECT_EQ(t.experts[0]->slices[1].out_offset, Ie);
  EXPECT_EQ(t.experts[1]->name, ex + "down_proj");
  EXPECT_EQ(t.experts[1]->slices.at(0).module, ex + "down_proj");
  for (size_t i = 0; i < t.experts.size(); ++i) EXPECT_EQ(t.experts[i]->lora_id, static_cast<int>(i));
  ASSERT_NE(t.embedding, nullptr);
  EXPECT_EQ(t.embedding->module, "model.embed_tokens");
}

TEST(DeepseekV3Lora, NoQLoraFusesQProjAndTiesLmHead) {
  REQUIRE_FIXTURE("deepseek_v3_no_qlora");
  auto m = load_model(fixture("deepseek_v3_no_qlora").string());
  const LoraTargets& t = m->lora_targets();
  const Linear* fused = nullptr;
  const Linear* lm_head = nullptr;
  for (auto* l : t.linears) {
    if (l->name == "model.layers.0.self_attn.fused_qkv_a") fused = l;
    if (l->name == "lm_head") lm_head = l;
    EXPECT_EQ(l->name.find("q_b_proj"), std::string::npos);
  }
  ASSERT_TRUE(fused && lm_head);
  ASSERT_EQ(fused->slices.size(), 2u);
  EXPECT_EQ(fused->slices[0].module, "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(fused->slices[0].out_size, 4 * 24);
  EXPECT_EQ(fused->slices[1].module, "model.layers.0.self_attn.kv_a_proj_with_mqa");
  EXPECT_EQ(fused->slices[1].out_offset, 4 * 24);
  EXPECT_EQ(lm_head->weight.raw(), t.embedding->table.raw());  // tie_word_embeddings
}
