// RandomWeights (io/random_weights.h): deterministic per seed, the value ranges each kind of tensor gets, and a model
// of every architecture built from it that gives the checkpoint's weight shapes and finite logits.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "engine/executor.h"
#include "io/random_weights.h"
#include "models/model.h"
#include "test_support.h"

namespace {

using namespace hylora;
namespace fs = std::filesystem;

double mean_of(const Tensor& t) {
  double s = 0;
  for (int64_t i = 0; i < t.numel(); ++i) s += t.f32()[i];
  return s / static_cast<double>(t.numel());
}
double std_of(const Tensor& t) {
  const double m = mean_of(t);
  double s = 0;
  for (int64_t i = 0; i < t.numel(); ++i) s += (t.f32()[i] - m) * (t.f32()[i] - m);
  return std::sqrt(s / static_cast<double>(t.numel()));
}
bool same(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (a.f32()[i] != b.f32()[i]) return false;
  return true;
}

TEST(RandomWeights, SameSeedSameValuesOtherSeedOrNameOtherValues) {
  RandomWeights a(7, nullptr), b(7, nullptr), c(8, nullptr);
  const std::string name = "model.layers.0.mlp.down_proj.weight";
  Tensor x = a.get(name, {96, 64});
  // Asking in another order, or for other tensors first, gives the same values (one stream per name).
  b.get("model.embed_tokens.weight", {10, 64});
  EXPECT_TRUE(same(x, b.get(name, {96, 64})));
  EXPECT_FALSE(same(x, c.get(name, {96, 64})));
  EXPECT_FALSE(same(x, a.get("model.layers.1.mlp.down_proj.weight", {96, 64})));
  EXPECT_NEAR(mean_of(x), 0.0, 0.002);
  EXPECT_NEAR(std_of(x), RandomWeights::kStd, 0.002);
}

TEST(RandomWeights, EachKindOfTensorGetsItsRealRange) {
  RandomWeights w(1, [](const std::string& n) { return n.find("input_layernorm") != std::string::npos; });
  EXPECT_NEAR(mean_of(w.get("model.layers.0.input_layernorm.weight", {4096})), 0.0, 0.003);  // (1 + w): neutral 0
  EXPECT_NEAR(mean_of(w.get("model.layers.0.mixer.norm.weight", {4096})), 1.0, 0.003);       // plain: neutral 1
  Tensor a_log = w.get("model.layers.0.mixer.A_log", {4096});
  Tensor dt_bias = w.get("model.layers.0.mixer.dt_bias", {4096});
  for (int64_t i = 0; i < 4096; ++i) {
    EXPECT_GE(a_log.f32()[i], 0.0f);  // A = exp(A_log) in [1, 16]
    EXPECT_LE(a_log.f32()[i], std::log(16.0f) + 1e-5f);
    const double dt = std::log1p(std::exp(static_cast<double>(dt_bias.f32()[i])));  // softplus
    EXPECT_GE(dt, 1e-3 * 0.999);
    EXPECT_LE(dt, 1e-1 * 1.001);
  }
  Tensor D = w.get("model.layers.0.mixer.D", {8});
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(D.f32()[i], 1.0f);
  EXPECT_NEAR(std_of(w.get("model.layers.0.mixer.conv1d.weight", {512, 4})), 0.5, 0.05);  // 1/sqrt(K)
  // Optional tensors are absent; expert tensors come fused, in the expected shape.
  EXPECT_FALSE(w.get_optional("lm_head.weight", {4, 4}).defined());
  EXPECT_EQ(w.experts("model.layers.0.mlp.experts", "down_proj", {"down_proj"}, {3, 5, 7}).shape(), (Shape{3, 5, 7}));
}

// Every architecture: the random model holds exactly the weight shapes of the checkpoint model of the same config,
// and its forward over a prefill and a decode step gives finite logits.
class RandomModel : public ::testing::TestWithParam<const char*> {};

TEST_P(RandomModel, SameShapesAsTheCheckpointAndFiniteLogits) {
  const fs::path dir = fs::path(HYLORA_FIXTURES_DIR) / GetParam() / "model";
  const std::string path = (dir / "config.json").string();
  const json config = read_json_file(path);
  auto loaded = load_model(dir.string());
  auto random = make_model(config, path, WeightOrigin::random_weights(3));
  auto shapes = [](Model& m) {
    std::vector<Shape> s;
    m.for_each_weight([&](Tensor& t) { s.push_back(t.defined() ? t.shape() : Shape{-1}); });
    return s;
  };
  EXPECT_EQ(shapes(*loaded), shapes(*random));
  EXPECT_EQ(random->architecture(), loaded->architecture());

  // Deterministic: a second model of the same seed has the same weights.
  auto again = make_model(config, path, WeightOrigin::random_weights(3));
  std::vector<Tensor> w1, w2;
  random->for_each_weight([&](Tensor& t) { w1.push_back(t); });
  again->for_each_weight([&](Tensor& t) { w2.push_back(t); });
  ASSERT_EQ(w1.size(), w2.size());
  for (size_t i = 0; i < w1.size(); ++i) {
    if (!w1[i].defined()) continue;
    EXPECT_TRUE(same(w1[i], w2[i])) << "weight " << i;
  }

  Executor ex(*random, test_support::test_executor_options());
  SeqId s = ex.open_sequence();
  std::vector<int32_t> prompt;
  for (int i = 0; i < 40; ++i) prompt.push_back((i * 37) % static_cast<int>(random->vocab_size()));
  for (const std::vector<int32_t>& tokens : {prompt, std::vector<int32_t>{5}}) {
    StepOutput out = ex.execute({{s, tokens, nullptr, RowOutput::kAll}});
    ASSERT_EQ(out.logits.dim(0), static_cast<int64_t>(tokens.size()));
    double spread = 0;
    for (int64_t i = 0; i < out.logits.numel(); ++i) {
      ASSERT_TRUE(std::isfinite(out.logits.f32()[i])) << "logit " << i;
      spread = std::max(spread, std::fabs(static_cast<double>(out.logits.f32()[i] - out.logits.f32()[0])));
    }
    EXPECT_GT(spread, 1e-4) << "the logits of a random model should not be constant";
  }
}

INSTANTIATE_TEST_SUITE_P(EveryArchitecture, RandomModel,
                         ::testing::Values("qwen3_5_cg_tied_sharded", "qwen3_5_moe_causal_fused",
                                           "qwen3_5_moe_cg_per_expert", "qwen3_causal", "qwen3_moe_causal",
                                           "nemotron_h", "nemotron_h_latent", "deepseek_v3_qlora",
                                           "deepseek_v3_no_qlora"));

}  // namespace
