// Bad checkpoints and configs fail with one clear message naming the file/tensor/field and what was expected.
#include <gtest/gtest.h>

#include "test_support.h"

#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>

#include "engine/scorer.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "io/weight_loader.h"
#include "models/model.h"

using namespace hylora;
namespace fs = std::filesystem;

namespace {

using hylora::test_support::temp_dir;

using hylora::test_support::error_of;

Tensor filled(Shape s, float v) {
  Tensor t = Tensor::empty(std::move(s));
  std::fill(t.f32(), t.f32() + t.numel(), v);
  return t;
}

}  // namespace

TEST(LoadingErrors, TruncatedSafetensorsNamesTheFile) {
  auto dir = temp_dir("trunc");
  write_safetensors((dir / "model.safetensors").string(), {{"a", filled({4, 4}, 1.0f)}});
  fs::resize_file(dir / "model.safetensors", fs::file_size(dir / "model.safetensors") - 10);
  std::string msg = error_of([&] { Checkpoint::open_dir(dir.string()); });
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST(LoadingErrors, MissingWeightsFile) {
  auto dir = temp_dir("missing");
  std::string msg = error_of([&] { Checkpoint::open_dir(dir.string()); });
  EXPECT_NE(msg.find("no model.safetensors"), std::string::npos) << msg;
}

TEST(LoadingErrors, MissingShardListedInIndex) {
  auto dir = temp_dir("shard");
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"metadata": {}, "weight_map": {"w": "model-00001-of-00002.safetensors"}})";
  std::string msg = error_of([&] { Checkpoint::open_dir(dir.string()); });
  EXPECT_NE(msg.find("model-00001-of-00002.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
}

TEST(LoadingErrors, UnsupportedDtype) {
  auto dir = temp_dir("dtype");
  // Hand-written header with an int64 tensor.
  std::string h = R"({"w": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})";
  while (h.size() % 8) h += ' ';
  uint64_t len = h.size();
  std::ofstream out(dir / "model.safetensors", std::ios::binary);
  out.write(reinterpret_cast<const char*>(&len), 8);
  out << h << std::string(8, '\0');
  out.close();
  std::string msg = error_of([&] { Checkpoint::open_dir(dir.string()); });
  EXPECT_NE(msg.find("I64"), std::string::npos) << msg;
  EXPECT_NE(msg.find("supported dtypes"), std::string::npos) << msg;
}

TEST(LoadingErrors, WrongShapeAndMissingTensorSuggestWrongBaseModel) {
  auto dir = temp_dir("shape");
  write_safetensors((dir / "model.safetensors").string(), {{"model.w", filled({4, 3}, 0.5f)}}, DType::BF16);
  WeightLoader loader(Checkpoint::open_dir(dir.string()), [](const std::string& s) { return s; });
  std::string msg = error_of([&] { loader.get("model.w", {4, 4}); });
  EXPECT_NE(msg.find("model.w"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4, 3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("wrong base model"), std::string::npos) << msg;
  msg = error_of([&] { loader.get("model.other", {4}); });
  EXPECT_NE(msg.find("model.other is missing"), std::string::npos) << msg;
  // And the happy path converts bf16 to float32.
  EXPECT_EQ(loader.get("model.w", {4, 3}).f32()[5], 0.5f);
}

TEST(LoadingErrors, MalformedConfig) {
  auto dir = temp_dir("config");
  std::ofstream(dir / "config.json") << "{\"architectures\": [\"Qwen3_5ForCausalLM\",";
  std::string msg = error_of([&] { load_model(dir.string()); });
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
}

TEST(LoadingErrors, UnsupportedArchitectureListsSupportedOnes) {
  auto dir = temp_dir("arch");
  std::ofstream(dir / "config.json") << R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})";
  std::string msg = error_of([&] { load_model(dir.string()); });
  EXPECT_NE(msg.find("LlamaForCausalLM"), std::string::npos) << msg;
  EXPECT_NE(msg.find("NemotronHForCausalLM"), std::string::npos) << msg;
  EXPECT_NE(msg.find("DeepseekV3ForCausalLM"), std::string::npos) << msg;
}

namespace {
// A model whose logits are always uniform over 10 tokens: exercises the scorer without weights.
class UniformModel : public Model {
 public:
  std::string architecture() const override { return "uniform"; }
  int64_t vocab_size() const override { return 10; }
  int64_t hidden_size() const override { return 1; }
  int64_t num_layers() const override { return 1; }
  std::vector<LayerCacheSpec> cache_specs() const override { return {LayerCacheSpec{}}; }
  void forward(const ForwardArgs&, Tensor& logits) override {
    steps++;
    std::fill(logits.f32(), logits.f32() + logits.numel(), 0.0f);
  }
  int steps = 0;
};
}  // namespace

TEST(ScoreRequests, BadRequestsFailAloneOthersAreScored) {
  UniformModel m;
  std::vector<ScoreRequest> reqs = {
      {"ok", {1, 2, 3}, std::nullopt},
      {"empty", {}, std::nullopt},
      {"oov", {1, 10}, std::nullopt},
      {"adapter", {1, 2}, std::string("nope")},
      {"single", {4}, std::nullopt},
  };
  auto res = test_support::score_requests(m, reqs, {});
  ASSERT_EQ(res.size(), 5u);
  EXPECT_TRUE(res[0].error.empty());
  ASSERT_EQ(res[0].logprobs.size(), 2u);
  EXPECT_NEAR(res[0].logprobs[0], -std::log(10.0), 1e-9);
  EXPECT_NE(res[1].error.find("empty"), std::string::npos);
  EXPECT_NE(res[2].error.find("outside the vocabulary"), std::string::npos);
  EXPECT_NE(res[3].error.find("nope"), std::string::npos);
  EXPECT_TRUE(res[4].error.empty());
  EXPECT_TRUE(res[4].logprobs.empty());
}

TEST(ScoreRequests, TokenBudgetSplitsWorkIntoSteps) {
  UniformModel m;
  std::vector<ScoreRequest> reqs = {{"a", std::vector<int32_t>(10, 1), std::nullopt},
                                    {"b", std::vector<int32_t>(5, 2), std::nullopt}};
  ScoreOptions o;
  o.max_batch_tokens = 4;
  o.prefill_chunk = 3;
  auto res = test_support::score_requests(m, reqs, o);
  EXPECT_EQ(res[0].logprobs.size(), 9u);
  EXPECT_EQ(res[1].logprobs.size(), 4u);
  EXPECT_GE(m.steps, 4);  // 15 tokens at ≤ 4 rows per step
}
