// Qwen3.5 config parsing (models.md §1.1-1.2, §1.6, §1.9): composite vs flat, layer_types vs
// full_attention_interval, rope_parameters / partial_rotary_factor, MoE fields, the tie rule, and clear errors.
#include <gtest/gtest.h>

#include "test_support.h"

#include <functional>

#include "models/qwen3_5_config.h"

using namespace hylora;
using namespace hylora::qwen3_5;

namespace {
using hylora::test_support::error_of;

json text_config() {
  return {{"model_type", "qwen3_5_text"},
          {"vocab_size", 256},
          {"hidden_size", 64},
          {"intermediate_size", 96},
          {"num_hidden_layers", 8},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"head_dim", 32},
          {"linear_key_head_dim", 16},
          {"linear_value_head_dim", 24},
          {"linear_num_key_heads", 2},
          {"linear_num_value_heads", 4},
          {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 1e7}, {"partial_rotary_factor", 0.25},
                               {"mrope_section", {2, 1, 1}}, {"mrope_interleaved", true}}}};
}

bool has(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }
}  // namespace

TEST(Qwen35Config, FlatTextConfigAndDerivedLayerTypes) {
  Config c = parse_config(text_config(), "c.json");
  EXPECT_FALSE(c.moe);
  EXPECT_FALSE(c.conditional_generation);
  ASSERT_EQ(c.layers.size(), 8u);
  for (size_t i = 0; i < 8; ++i)  // default full_attention_interval 4: [lin, lin, lin, full] × 2
    EXPECT_EQ(c.layers[i], i % 4 == 3 ? LayerType::kFullAttention : LayerType::kLinearAttention) << i;
  EXPECT_EQ(c.rotary_dim, 8);
  EXPECT_EQ(c.rope_theta, 1e7);
  EXPECT_EQ(c.conv_dim(), 2 * 2 * 16 + 4 * 24);
  EXPECT_EQ(c.conv_kernel, 4);
  EXPECT_FALSE(c.tie_word_embeddings);

  json j = text_config();
  j["full_attention_interval"] = 2;
  c = parse_config(j, "c.json");
  EXPECT_EQ(c.layers[1], LayerType::kFullAttention);
  EXPECT_EQ(c.layers[2], LayerType::kLinearAttention);
  j["layer_types"] = {"full_attention", "linear_attention", "linear_attention", "linear_attention",
                      "full_attention", "full_attention", "linear_attention", "full_attention"};
  c = parse_config(j, "c.json");  // an explicit list wins over the interval
  EXPECT_EQ(c.layers[0], LayerType::kFullAttention);
  EXPECT_EQ(c.layers[1], LayerType::kLinearAttention);
  EXPECT_EQ(c.layers[5], LayerType::kFullAttention);
}

TEST(Qwen35Config, PartialRotaryFactorFromTopLevelOrDefault) {
  json j = text_config();
  j.erase("rope_parameters");
  Config c = parse_config(j, "c.json");  // HF default: theta 1e4, factor 0.25
  EXPECT_EQ(c.rotary_dim, 8);
  EXPECT_EQ(c.rope_theta, 10000.0);
  j["partial_rotary_factor"] = 0.5;
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 5e5}};
  c = parse_config(j, "c.json");
  EXPECT_EQ(c.rotary_dim, 16);
  EXPECT_EQ(c.rope_theta, 5e5);
}

TEST(Qwen35Config, CompositeConfigAndTheTieRule) {
  json top = {{"architectures", {"Qwen3_5ForConditionalGeneration"}}, {"model_type", "qwen3_5"},
              {"text_config", text_config()}, {"tie_word_embeddings", true}};
  top["text_config"]["tie_word_embeddings"] = false;
  Config c = parse_config(top, "c.json");
  EXPECT_TRUE(c.conditional_generation);
  EXPECT_TRUE(c.tie_word_embeddings);  // CG: the top-level flag decides
  EXPECT_EQ(c.hidden_size, 64);
  top["tie_word_embeddings"] = false;
  top["text_config"]["tie_word_embeddings"] = true;
  EXPECT_FALSE(parse_config(top, "c.json").tie_word_embeddings);  // text flag alone does not tie a CG model
  top["architectures"] = {"Qwen3_5ForCausalLM"};
  EXPECT_TRUE(parse_config(top, "c.json").tie_word_embeddings);  // CausalLM reads its own (text) config
  top.erase("architectures");
  EXPECT_TRUE(parse_config(top, "c.json").conditional_generation);  // composite without architectures
}

TEST(Qwen35Config, MoeFields) {
  json t = text_config();
  t.erase("intermediate_size");
  t["model_type"] = "qwen3_5_moe_text";
  t["num_experts"] = 8;
  t["num_experts_per_tok"] = 2;
  t["moe_intermediate_size"] = 32;
  t["shared_expert_intermediate_size"] = 48;
  Config c = parse_config(t, "c.json");
  EXPECT_TRUE(c.moe);
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_EQ(c.num_experts_per_tok, 2);
  EXPECT_EQ(c.moe_intermediate_size, 32);
  EXPECT_EQ(c.shared_expert_intermediate_size, 48);
  json top = {{"architectures", {"Qwen3_5MoeForConditionalGeneration"}}, {"model_type", "qwen3_5_moe"},
              {"text_config", t}};
  c = parse_config(top, "c.json");
  EXPECT_TRUE(c.moe);
  EXPECT_TRUE(c.conditional_generation);
  t["num_experts_per_tok"] = 9;
  std::string e = error_of([&] { parse_config(t, "c.json"); });
  EXPECT_TRUE(has(e, "num_experts_per_tok (9)")) << e;
}

TEST(Qwen35Config, MalformedFieldsAreClearErrors) {
  json j = text_config();
  j["hidden_size"] = "sixty-four";
  std::string e = error_of([&] { parse_config(j, "model/config.json"); });
  EXPECT_TRUE(has(e, "model/config.json") && has(e, "\"hidden_size\"") && has(e, "wrong type")) << e;

  j = text_config();
  j["layer_types"] = {"linear_attention", "full_attention"};
  e = error_of([&] { parse_config(j, "c.json"); });
  EXPECT_TRUE(has(e, "layer_types has 2 entries") && has(e, "num_hidden_layers = 8")) << e;

  j["layer_types"] = {"linear_attention", "sliding_attention", "a", "b", "c", "d", "e", "f"};
  e = error_of([&] { parse_config(j, "c.json"); });
  EXPECT_TRUE(has(e, "layer_types[1]") && has(e, "sliding_attention")) << e;

  j = text_config();
  j["linear_num_value_heads"] = 3;
  e = error_of([&] { parse_config(j, "c.json"); });
  EXPECT_TRUE(has(e, "linear_num_value_heads (3)") && has(e, "linear_num_key_heads (2)")) << e;

  j = text_config();
  j["rope_parameters"]["partial_rotary_factor"] = 0.3;  // 32 · 0.3 = 9.6 → 9, odd
  e = error_of([&] { parse_config(j, "c.json"); });
  EXPECT_TRUE(has(e, "partial_rotary_factor") && has(e, "even")) << e;

  j = text_config();
  j["rope_parameters"]["rope_type"] = "yarn";
  e = error_of([&] { parse_config(j, "c.json"); });
  EXPECT_TRUE(has(e, "rope_parameters") && has(e, "yarn")) << e;

  j = text_config();
  j["hidden_act"] = "gelu";
  e = error_of([&] { parse_config(j, "c.json"); });
  EXPECT_TRUE(has(e, "hidden_act") && has(e, "gelu")) << e;

  json top = {{"model_type", "qwen3_5"}, {"text_config", 5}};
  e = error_of([&] { parse_config(top, "c.json"); });
  EXPECT_TRUE(has(e, "\"text_config\"") && has(e, "object")) << e;
}
