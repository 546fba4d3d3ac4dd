// Plain Qwen3 / Qwen3-MoE config parsing: the Qwen3 flavour of the Qwen3.5 config, MoE layer selection
// (mlp_only_layers, decoder_sparse_step), norm_topk_prob, num_local_experts, and the sliding-window refusal.
#include <gtest/gtest.h>

#include "lora_test_support.h"  // error_of
#include "models/qwen3_config.h"

using namespace hylora;
using lora_test::error_of;

namespace {

json dense_config() {
  return {{"architectures", {"Qwen3ForCausalLM"}},
          {"model_type", "qwen3"},
          {"vocab_size", 256},
          {"hidden_size", 64},
          {"intermediate_size", 96},
          {"num_hidden_layers", 4},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"head_dim", 32},
          {"tie_word_embeddings", true},
          {"use_sliding_window", false},
          {"sliding_window", nullptr},
          {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 1e6}}}};
}

json moe_config() {
  json j = dense_config();
  j["architectures"] = {"Qwen3MoeForCausalLM"};
  j["model_type"] = "qwen3_moe";
  j["tie_word_embeddings"] = false;
  j["num_local_experts"] = 8;  // what transformers 5.17 writes for num_experts
  j["num_experts_per_tok"] = 2;
  j["moe_intermediate_size"] = 32;
  j["norm_topk_prob"] = false;
  j["decoder_sparse_step"] = 1;
  j["mlp_only_layers"] = json::array();
  return j;
}

bool has(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }
}  // namespace

TEST(Qwen3Config, DenseIsUngatedFullAttentionWithPlainNorms) {
  qwen3_5::Config c = qwen3::parse_config(dense_config(), "c.json");
  EXPECT_EQ(c.family, "Qwen3");
  EXPECT_FALSE(c.moe);
  EXPECT_FALSE(c.output_gate);
  EXPECT_EQ(c.norm, ops::NormKind::kPlain);
  ASSERT_EQ(c.layers.size(), 4u);
  for (auto t : c.layers) EXPECT_EQ(t, qwen3_5::LayerType::kFullAttention);
  EXPECT_EQ(c.rotary_dim, 32);
  EXPECT_EQ(c.rope_theta, 1e6);
  EXPECT_TRUE(c.tie_word_embeddings);
  for (size_t i = 0; i < 4; ++i) EXPECT_FALSE(c.moe_at(i));
}

TEST(Qwen3Config, SparseStepAndMlpOnlyLayersPickTheMoeLayers) {
  qwen3_5::Config c = qwen3::parse_config(moe_config(), "c.json");
  EXPECT_TRUE(c.moe);
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_EQ(c.shared_expert_intermediate_size, 0);
  for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(c.moe_at(i)) << i;

  json j = moe_config();
  j["decoder_sparse_step"] = 2;  // sparse where (i+1) % 2 == 0: layers 1, 3
  j["mlp_only_layers"] = {3};    // ... except 3
  j["norm_topk_prob"] = true;
  c = qwen3::parse_config(j, "c.json");
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_FALSE(c.moe_at(0));
  EXPECT_TRUE(c.moe_at(1));
  EXPECT_FALSE(c.moe_at(2));
  EXPECT_FALSE(c.moe_at(3));

  j["decoder_sparse_step"] = 0;
  EXPECT_TRUE(has(error_of([&] { qwen3::parse_config(j, "c.json"); }), "decoder_sparse_step must be positive"));
}

TEST(Qwen3Config, SlidingWindowAndOtherRopeAreRefused) {
  json j = dense_config();
  j["use_sliding_window"] = true;
  j["sliding_window"] = 4096;
  std::string e = error_of([&] { qwen3::parse_config(j, "c.json"); });
  EXPECT_TRUE(has(e, "c.json")) << e;
  EXPECT_TRUE(has(e, "use_sliding_window: true is not supported")) << e;

  j = moe_config();
  j["layer_types"] = {"full_attention", "sliding_attention", "full_attention", "full_attention"};
  e = error_of([&] { qwen3::parse_config(j, "c.json"); });
  EXPECT_TRUE(has(e, "layer_types[1]")) << e;

  j = dense_config();
  j["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", 1e6}, {"factor", 4.0}};
  e = error_of([&] { qwen3::parse_config(j, "c.json"); });
  EXPECT_TRUE(has(e, "rope_type \"yarn\" is not supported")) << e;
}
