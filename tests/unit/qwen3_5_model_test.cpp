// Qwen3.5 model on the committed fixture checkpoints: the same weights in the other on-disk spelling (flat
// ForCausalLM config, `model.` names, fused experts) give identical numbers; the tied head shares the embedding;
// the LoRA targets are declared as lora.md §2 says. Exactness against HF is the golden tests' job.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "engine/scorer.h"
#include "test_support.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "models/model.h"

using namespace hylora;
namespace fs = std::filesystem;

namespace {

fs::path fixture(const std::string& name) { return fs::path(HYLORA_FIXTURES_DIR) / name / "model"; }

std::vector<ScoreRequest> requests(int64_t vocab) {
  std::vector<ScoreRequest> r;
  const std::pair<const char*, int> shapes[] = {{"a", 23}, {"b", 1}, {"c", 70}};
  uint32_t s = 12345;
  for (auto [id, len] : shapes) {
    ScoreRequest q;
    q.id = id;
    for (int i = 0; i < len; ++i) q.input_ids.push_back(static_cast<int32_t>((s = s * 1103515245u + 12345u) >> 8) % vocab);
    r.push_back(q);
  }
  return r;
}

std::vector<ScoreResult> score(Model& m) { return hylora::test_support::score_requests(m, requests(m.vocab_size()), ScoreOptions{}); }

// Rewrites the per-expert ConditionalGeneration MoE fixture as a flat Qwen3_5MoeForCausalLM checkpoint with fused
// experts (gate_up_proj = cat(gate, up) along rows, down_proj stacked), dropping the vision tower.
fs::path rewrite_as_causal_fused(const fs::path& src) {
  fs::path dir = fs::temp_directory_path() / ("hylora_qwen3_5_fused_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  json cfg = read_json_file((src / "config.json").string());
  json text = cfg["text_config"];
  text["architectures"] = {"Qwen3_5MoeForCausalLM"};
  text["tie_word_embeddings"] = cfg["tie_word_embeddings"];
  std::ofstream(dir / "config.json") << text.dump();
  const int64_t E = text["num_experts"];
  Checkpoint ck = Checkpoint::open_dir(src.string());
  std::map<std::string, Tensor> out;
  std::map<std::string, std::map<int64_t, std::map<std::string, Tensor>>> experts;  // prefix -> e -> part
  const std::regex per_expert(R"((.*\.mlp\.experts)\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight)");
  for (auto& [name, info] : ck.tensors()) {
    if (name.rfind("model.visual.", 0) == 0) continue;
    std::string canon = name.rfind("model.language_model.", 0) == 0 ? "model." + name.substr(21) : name;
    std::smatch m;
    if (std::regex_match(canon, m, per_expert))
      experts[m[1]][std::stoll(m[2])][m[3]] = ck.to_f32(name);
    else
      out[canon] = ck.to_f32(name);
  }
  for (auto& [prefix, per] : experts) {
    const Tensor& g0 = per.at(0).at("gate_proj");
    const Tensor& d0 = per.at(0).at("down_proj");
    const int64_t I = g0.dim(0), H = g0.dim(1);
    Tensor gu = Tensor::empty({E, 2 * I, H}), dn = Tensor::empty({E, H, I});
    for (int64_t e = 0; e < E; ++e) {
      std::copy_n(per.at(e).at("gate_proj").f32(), I * H, gu.f32() + e * 2 * I * H);
      std::copy_n(per.at(e).at("up_proj").f32(), I * H, gu.f32() + e * 2 * I * H + I * H);
      std::copy_n(per.at(e).at("down_proj").f32(), d0.numel(), dn.f32() + e * H * I);
    }
    out[prefix + ".gate_up_proj"] = gu;
    out[prefix + ".down_proj"] = dn;
  }
  write_safetensors((dir / "model.safetensors").string(), out);
  return dir;
}

}  // namespace

TEST(Qwen35Model, FusedCausalSpellingGivesTheSameNumbersAsPerExpertConditionalGeneration) {
  ASSERT_TRUE(fs::exists(fixture("qwen3_5_moe_cg_per_expert"))) << "fixture missing (fixtures are committed)";
  auto cg = load_model(fixture("qwen3_5_moe_cg_per_expert").string());
  const fs::path dir = rewrite_as_causal_fused(fixture("qwen3_5_moe_cg_per_expert"));
  auto causal = load_model(dir.string());
  fs::remove_all(dir);  // the mapping stays valid
  EXPECT_EQ(cg->architecture(), "Qwen3_5MoeForConditionalGeneration");
  EXPECT_EQ(causal->architecture(), "Qwen3_5MoeForCausalLM");
  auto a = score(*cg), b = score(*causal);
  double spread = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(a[i].error.empty() && b[i].error.empty()) << a[i].error << b[i].error;
    ASSERT_EQ(a[i].logprobs, b[i].logprobs) << a[i].id;
    for (double v : a[i].logprobs) spread = std::max(spread, std::abs(v + std::log(double(cg->vocab_size()))));
  }
  EXPECT_GT(spread, 0.5);  // not a degenerate (uniform) output
}

TEST(Qwen35Model, TiedHeadSharesTheEmbeddingTable) {
  ASSERT_TRUE(fs::exists(fixture("qwen3_5_cg_tied_sharded"))) << "fixture missing (fixtures are committed)";
  auto m = load_model(fixture("qwen3_5_cg_tied_sharded").string());
  const Linear* head = nullptr;
  for (auto* l : m->lora_targets().linears)
    if (l->name == "lm_head") head = l;
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->weight.raw(), m->lora_targets().embedding->table.raw());
}

TEST(Qwen35Lora, DenseTargetsAreDeclaredPerLoraMd) {
  ASSERT_TRUE(fs::exists(fixture("qwen3_5_causal_bf16"))) << "fixture missing (fixtures are committed)";
  auto m = load_model(fixture("qwen3_5_causal_bf16").string());  // H 64, nH 4, nKV 2, D 32, I 96, GDN 2/4 × 16/24
  std::map<std::string, const Linear*> by;
  for (auto* l : m->lora_targets().linears) by[l->name] = l;
  const Linear* in = by.at("model.layers.0.linear_attn.in_proj");
  const int64_t C = 2 * 2 * 16 + 4 * 24, vd = 4 * 24;
  ASSERT_EQ(in->slices.size(), 4u);
  const char* gdn[] = {"in_proj_qkv", "in_proj_z", "in_proj_b", "in_proj_a"};
  const int64_t off[] = {0, C, C + vd, C + vd + 4}, size[] = {C, vd, 4, 4};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(in->slices[i].module, std::string("model.layers.0.linear_attn.") + gdn[i]);
    EXPECT_EQ(in->slices[i].out_offset, off[i]);
    EXPECT_EQ(in->slices[i].out_size, size[i]);
  }
  const Linear* qkv = by.at("model.layers.3.self_attn.qkv");
  ASSERT_EQ(qkv->slices.size(), 3u);
  EXPECT_EQ(qkv->slices[0].module, "model.layers.3.self_attn.q_proj");
  EXPECT_EQ(qkv->slices[0].out_size, 2 * 4 * 32);  // query and gate, interleaved per head
  EXPECT_EQ(qkv->slices[1].module, "model.layers.3.self_attn.k_proj");
  EXPECT_EQ(qkv->slices[1].out_offset, 2 * 4 * 32);
  EXPECT_EQ(qkv->slices[2].module, "model.layers.3.self_attn.v_proj");
  EXPECT_EQ(qkv->slices[2].out_offset, 2 * 4 * 32 + 2 * 32);
  const Linear* gu = by.at("model.layers.1.mlp.gate_up");
  ASSERT_EQ(gu->slices.size(), 2u);
  EXPECT_EQ(gu->slices[0].module, "model.layers.1.mlp.gate_proj");
  EXPECT_EQ(gu->slices[1].module, "model.layers.1.mlp.up_proj");
  EXPECT_EQ(gu->slices[1].out_offset, 96);
  for (const char* n : {"model.layers.0.linear_attn.out_proj", "model.layers.3.self_attn.o_proj",
                        "model.layers.2.mlp.down_proj", "lm_head"}) {
    ASSERT_TRUE(by.count(n)) << n;
    ASSERT_EQ(by[n]->slices.size(), 1u) << n;
    EXPECT_EQ(by[n]->slices[0].module, n);
  }
  EXPECT_EQ(m->lora_targets().linears.size(), 4u * 4 + 1);
  std::set<int> ids;
  for (auto* l : m->lora_targets().linears) EXPECT_TRUE(ids.insert(l->lora_id).second && l->lora_id >= 0);
  EXPECT_TRUE(m->lora_targets().experts.empty());
  EXPECT_EQ(m->lora_targets().embedding->module, "model.embed_tokens");
  auto aliases = m->adapter_prefix_aliases();
  ASSERT_EQ(aliases.size(), 1u);
  EXPECT_EQ(aliases[0], (std::pair<std::string, std::string>{"model.language_model.", "model."}));
  EXPECT_EQ(m->unserved_prefixes(), (std::vector<std::string>{"model.visual.", "mtp."}));
}

TEST(Qwen35Lora, MoeTargetsAreDeclaredPerLoraMd) {
  ASSERT_TRUE(fs::exists(fixture("qwen3_5_moe_cg_per_expert"))) << "fixture missing (fixtures are committed)";
  auto m = load_model(fixture("qwen3_5_moe_cg_per_expert").string());  // E 8, Ie 32, Is 48, H 64
  std::map<std::string, const Linear*> by;
  for (auto* l : m->lora_targets().linears) by[l->name] = l;
  EXPECT_FALSE(by.count("model.layers.0.mlp.gate_up"));  // no dense MLP in an MoE model
  const std::string p = "model.layers.2.mlp.";
  EXPECT_EQ(by.at(p + "gate")->slices.at(0).module, p + "gate");
  EXPECT_EQ(by.at(p + "gate")->out_features(), 8);
  const Linear* sgu = by.at(p + "shared_expert.gate_up");
  ASSERT_EQ(sgu->slices.size(), 2u);
  EXPECT_EQ(sgu->slices[0].module, p + "shared_expert.gate_proj");
  EXPECT_EQ(sgu->slices[1].module, p + "shared_expert.up_proj");
  EXPECT_EQ(sgu->slices[1].out_offset, 48);
  EXPECT_EQ(by.at(p + "shared_expert.down_proj")->slices.at(0).module, p + "shared_expert.down_proj");
  EXPECT_EQ(by.at(p + "shared_expert_gate")->slices.at(0).module, p + "shared_expert_gate");
  EXPECT_EQ(by.at(p + "shared_expert_gate")->out_features(), 1);
  const auto& ex = m->lora_targets().experts;
  ASSERT_EQ(ex.size(), 8u);  // gate_up + down per layer
  const ExpertLinear* gu = ex[4];
  const ExpertLinear* dn = ex[5];
  EXPECT_EQ(gu->name, p + "experts.gate_up_proj");
  ASSERT_EQ(gu->slices.size(), 2u);
  EXPECT_EQ(gu->slices[0].module, p + "experts.gate_proj");
  EXPECT_EQ(gu->slices[0].out_size, 32);
  EXPECT_EQ(gu->slices[1].module, p + "experts.up_proj");
  EXPECT_EQ(gu->slices[1].out_offset, 32);
  EXPECT_EQ(gu->weight.shape(), (Shape{8, 64, 64}));
  EXPECT_EQ(dn->name, p + "experts.down_proj");
  ASSERT_EQ(dn->slices.size(), 1u);
  EXPECT_EQ(dn->slices[0].module, p + "experts.down_proj");
  EXPECT_EQ(dn->weight.shape(), (Shape{8, 64, 32}));
  for (size_t i = 0; i < ex.size(); ++i) EXPECT_EQ(ex[i]->lora_id, static_cast<int>(i));
}
