// Nemotron-H model on a tiny random checkpoint (models.md §5.3 sizes): both checkpoint spellings load to the same
// numbers, token-by-token decoding and chunked prefill equal one prefill, and the LoRA targets are declared as
// lora.md §2 says. Exactness against HF is the golden fixtures' job.
#include <gtest/gtest.h>

#include "test_support.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "engine/scorer.h"
#include "io/config.h"
#include "io/safetensors_writer.h"
#include "models/model.h"

using namespace hylora;
namespace fs = std::filesystem;

namespace {

const int64_t V = 256, H = 64, nH = 4, nKV = 2, Dh = 16, Imlp = 96, nh = 8, hd = 8, N = 16, G = 2, K = 4, E = 8,
              Ie = 32, Is = 48;

json tiny_config(int64_t latent) {
  json j = {{"architectures", {"NemotronHForCausalLM"}},
            {"model_type", "nemotron_h"},
            {"vocab_size", V},
            {"hidden_size", H},
            {"hybrid_override_pattern", "ME*-ME"},
            {"num_attention_heads", nH},
            {"num_key_value_heads", nKV},
            {"head_dim", Dh},
            {"intermediate_size", Imlp},
            {"mamba_num_heads", nh},
            {"mamba_head_dim", hd},
            {"ssm_state_size", N},
            {"n_groups", G},
            {"conv_kernel", K},
            {"n_routed_experts", E},
            {"num_experts_per_tok", 2},
            {"moe_intermediate_size", Ie},
            {"moe_shared_expert_intermediate_size", Is},
            {"n_group", 2},
            {"topk_group", 1},
            {"routed_scaling_factor", 2.5},
            {"layer_norm_epsilon", 1e-5},
            {"time_step_min", 0.001}};
  j["moe_latent_size"] = latent > 0 ? json(latent) : json(nullptr);
  return j;
}

// Random weights under canonical names; experts as per-expert tensors (hub) or fused 3-D (in-memory).
std::map<std::string, Tensor> tiny_weights(int64_t latent, const std::string& root, bool fused_experts) {
  std::mt19937 rng(1234 + latent);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::map<std::string, Tensor> w;
  auto mat = [&](const std::string& name, Shape s) {
    Tensor t = Tensor::empty(s);
    const float sc = 0.8f / std::sqrt(static_cast<float>(s.back()));
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = sc * nd(rng);
    w[name] = t;
    return t;
  };
  auto vec = [&](const std::string& name, int64_t n, float shift) {
    Tensor t = Tensor::empty({n});
    for (int64_t i = 0; i < n; ++i) t.f32()[i] = shift + 0.3f * nd(rng);
    w[name] = t;
  };
  const int64_t I = nh * hd, cd = I + 2 * G * N, L = latent > 0 ? latent : H;
  mat(root + "embeddings.weight", {V, H});
  const std::string types = "ME*-ME";
  for (size_t i = 0; i < types.size(); ++i) {
    const std::string p = root + "layers." + std::to_string(i) + ".";
    const std::string m = p + "mixer.";
    vec(p + "norm.weight", H, 1.0f);
    switch (types[i]) {
      case 'M': {
        mat(m + "in_proj.weight", {I + cd + nh, H});
        mat(m + "conv1d.weight", {cd, 1, K});
        vec(m + "conv1d.bias", cd, 0.0f);
        vec(m + "dt_bias", nh, 0.0f);
        Tensor a = Tensor::empty({nh});
        std::uniform_real_distribution<float> u(0.5f, 3.5f);
        for (int64_t h = 0; h < nh; ++h) a.f32()[h] = std::log(u(rng));
        w[m + "A_log"] = a;
        vec(m + "D", nh, 0.0f);
        vec(m + "norm.weight", I, 1.0f);
        mat(m + "out_proj.weight", {H, I});
        break;
      }
      case '*':
        mat(m + "q_proj.weight", {nH * Dh, H});
        mat(m + "k_proj.weight", {nKV * Dh, H});
        mat(m + "v_proj.weight", {nKV * Dh, H});
        mat(m + "o_proj.weight", {H, nH * Dh});
        break;
      case '-':
        mat(m + "up_proj.weight", {Imlp, H});
        mat(m + "down_proj.weight", {H, Imlp});
        break;
      case 'E': {
        mat(m + "gate.weight", {E, H});
        vec(m + "gate.e_score_correction_bias", E, 0.0f);
        if (latent > 0) {
          mat(m + "fc1_latent_proj.weight", {L, H});
          mat(m + "fc2_latent_proj.weight", {H, L});
        }
        Tensor up = mat(m + "experts.up_proj", {E, Ie, L});
        Tensor down = mat(m + "experts.down_proj", {E, L, Ie});
        if (!fused_experts) {
          w.erase(m + "experts.up_proj");
          w.erase(m + "experts.down_proj");
          for (int64_t e = 0; e < E; ++e) {
            w[m + "experts." + std::to_string(e) + ".up_proj.weight"] = up.rows(e, e + 1).clone().reshape({Ie, L});
            w[m + "experts." + std::to_string(e) + ".down_proj.weight"] =
                down.rows(e, e + 1).clone().reshape({L, Ie});
          }
        }
        mat(m + "shared_experts.up_proj.weight", {Is, H});
        mat(m + "shared_experts.down_proj.weight", {H, Is});
        break;
      }
    }
  }
  vec(root + "norm_f.weight", H, 1.0f);
  mat("lm_head.weight", {V, H});
  return w;
}

fs::path write_model(const std::string& tag, int64_t latent, const std::string& root, bool fused) {
  fs::path dir = fs::temp_directory_path() / ("hylora_nemotron_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << tiny_config(latent).dump();
  auto w = tiny_weights(latent, root, fused);
  if (root == "backbone.") w["mtp.layers.0.norm.weight"] = Tensor::zeros({H});  // skipped on load
  write_safetensors((dir / "model.safetensors").string(), w);
  return dir;
}

std::vector<ScoreResult> score(Model& m, int64_t chunk, int64_t budget) {
  return test_support::score_with(m, test_support::random_requests(V, 99), chunk, budget);
}
using test_support::max_diff;

}  // namespace

class NemotronHModel : public ::testing::TestWithParam<int64_t> {};

TEST_P(NemotronHModel, DecodeAndChunksEqualPrefillAndBothCheckpointFormatsLoad) {
  const int64_t latent = GetParam();
  auto hub = load_model(write_model("hub" + std::to_string(latent), latent, "backbone.", false).string());
  auto mem = load_model(write_model("mem" + std::to_string(latent), latent, "model.", true).string());
  auto prefill = score(*hub, 512, 4096);
  EXPECT_EQ(max_diff(prefill, score(*mem, 512, 4096)), 0.0);
  EXPECT_LT(max_diff(prefill, score(*hub, 1, 4096)), 2e-5);   // token-by-token decode
  EXPECT_LT(max_diff(prefill, score(*hub, 5, 12)), 2e-5);     // chunks packed across sequences
  double spread = 0;  // the logprobs are not trivial (a broken model giving uniform output would pass the above)
  for (auto& r : prefill)
    for (double v : r.logprobs) spread = std::max(spread, std::abs(v + std::log(static_cast<double>(V))));
  EXPECT_GT(spread, 0.5);
}

INSTANTIATE_TEST_SUITE_P(Latent, NemotronHModel, ::testing::Values(0, 24));

TEST(NemotronHLora, TargetsAreDeclaredPerLoraMd) {
  auto m = load_model(write_model("lora", 24, "backbone.", false).string());
  const LoraTargets& t = m->lora_targets();
  std::map<std::string, const Linear*> by_name;
  for (auto* l : t.linears) by_name[l->name] = l;
  const Linear* in = by_name.at("model.layers.0.mixer.in_proj");
  ASSERT_EQ(in->slices.size(), 1u);
  EXPECT_EQ(in->slices[0].out_size, in->out_features());
  const Linear* qkv = by_name.at("model.layers.2.mixer.qkv");
  ASSERT_EQ(qkv->slices.size(), 3u);
  EXPECT_EQ(qkv->slices[0].module, "model.layers.2.mixer.q_proj");
  EXPECT_EQ(qkv->slices[1].module, "model.layers.2.mixer.k_proj");
  EXPECT_EQ(qkv->slices[1].out_offset, nH * Dh);
  EXPECT_EQ(qkv->slices[2].module, "model.layers.2.mixer.v_proj");
  EXPECT_EQ(qkv->slices[2].out_offset, (nH + nKV) * Dh);
  for (const char* n : {"model.layers.0.mixer.out_proj", "model.layers.2.mixer.o_proj", "model.layers.3.mixer.up_proj",
                        "model.layers.3.mixer.down_proj", "model.layers.1.mixer.gate",
                        "model.layers.1.mixer.fc1_latent_proj", "model.layers.1.mixer.fc2_latent_proj",
                        "model.layers.5.mixer.shared_experts.up_proj", "model.layers.5.mixer.shared_experts.down_proj",
                        "lm_head"}) {
    ASSERT_TRUE(by_name.count(n)) << n;
    ASSERT_EQ(by_name[n]->slices.size(), 1u) << n;
    EXPECT_EQ(by_name[n]->slices[0].module, n);
  }
  std::set<int> ids;
  for (auto* l : t.linears) EXPECT_TRUE(ids.insert(l->lora_id).second && l->lora_id >= 0);
  ASSERT_EQ(t.experts.size(), 4u);
  EXPECT_EQ(t.experts[0]->name, "model.layers.1.mixer.experts.up_proj");
  EXPECT_EQ(t.experts[0]->slices.at(0).module, "model.layers.1.mixer.experts.up_proj");
  EXPECT_EQ(t.experts[1]->name, "model.layers.1.mixer.experts.down_proj");
  ASSERT_NE(t.embedding, nullptr);
  EXPECT_EQ(t.embedding->module, "model.embeddings");
  auto aliases = m->adapter_prefix_aliases();
  ASSERT_EQ(aliases.size(), 1u);
  EXPECT_EQ(aliases[0].first, "backbone.");
  EXPECT_EQ(m->unserved_prefixes(), std::vector<std::string>{"mtp."});
}
