// DeepSeek-V3 / Kimi-K2 config.json parsing: the real hub configs, the legacy rope spellings, and the errors (each
// must name the field and what was found).
#include <gtest/gtest.h>

#include "models/deepseek_v3_config.h"

using namespace hylora;
using namespace hylora::deepseek_v3;

namespace {

// The fields of the hub DeepSeek-V3 config.json that matter here (both rope spellings, as the hub file has them).
json deepseek_hub() {
  return json::parse(R"({
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "first_k_dense_replace": 3,
    "hidden_act": "silu", "hidden_size": 7168, "intermediate_size": 18432, "kv_lora_rank": 512,
    "max_position_embeddings": 163840, "moe_intermediate_size": 2048, "moe_layer_freq": 1, "n_group": 8,
    "n_routed_experts": 256, "n_shared_experts": 1, "norm_topk_prob": true, "num_attention_heads": 128,
    "num_experts_per_tok": 8, "num_hidden_layers": 61, "num_key_value_heads": 128, "num_nextn_predict_layers": 1,
    "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "rms_norm_eps": 1e-06,
    "rope_parameters": {"rope_type": "yarn", "factor": 40.0, "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0,
                        "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096, "rope_theta": 10000.0},
    "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                     "original_max_position_embeddings": 4096, "type": "yarn"},
    "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "tie_word_embeddings": false,
    "topk_group": 4, "topk_method": "noaux_tc", "v_head_dim": 128, "vocab_size": 129280})");
}

json tiny() {
  return json::parse(R"({
    "model_type": "deepseek_v3", "vocab_size": 256, "hidden_size": 64, "intermediate_size": 96,
    "moe_intermediate_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 4,
    "n_shared_experts": 1, "n_routed_experts": 8, "routed_scaling_factor": 2.5, "kv_lora_rank": 24,
    "q_lora_rank": 32, "qk_rope_head_dim": 8, "v_head_dim": 16, "qk_nope_head_dim": 16, "n_group": 2,
    "topk_group": 1, "num_experts_per_tok": 2, "first_k_dense_replace": 1,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}})");
}

void expect_error(const json& j, const std::string& needle) {
  try {
    parse_config(j, "cfg.json");
    ADD_FAILURE() << "no error; expected one mentioning " << needle;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
  }
}

}  // namespace

TEST(DeepseekV3Config, HubDeepseekV3) {
  Config c = parse_config(deepseek_hub(), "cfg.json");
  EXPECT_EQ(c.num_layers, 61);
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_EQ(c.qk_head_dim(), 192);
  EXPECT_EQ(c.rope.type, "yarn");
  EXPECT_EQ(c.rope.factor, 40.0);
  EXPECT_EQ(c.rope.mscale_all_dim, 1.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 4096.0);
  EXPECT_TRUE(c.rope_interleave);  // HF default
  EXPECT_FALSE(c.is_moe_layer(2));
  EXPECT_TRUE(c.is_moe_layer(3));
  EXPECT_EQ(c.num_nextn_predict_layers, 1);
}

TEST(DeepseekV3Config, LegacyRopeScalingWinsAndTypeAlias) {
  json j = tiny();
  j["rope_theta"] = 50000.0;
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 32}, {"original_max_position_embeddings", 4096}};
  Config c = parse_config(j, "cfg.json");  // rope_parameters says "default": rope_scaling wins
  EXPECT_EQ(c.rope.type, "yarn");
  EXPECT_EQ(c.rope.theta, 50000.0);  // from the top-level field
  EXPECT_EQ(c.rope.beta_fast, 32.0);  // defaults
  EXPECT_EQ(c.rope.beta_slow, 1.0);
  EXPECT_EQ(c.rope.mscale_all_dim, 0.0);
  j["rope_scaling"] = nullptr;
  EXPECT_EQ(parse_config(j, "cfg.json").rope.type, "default");
  j.erase("rope_parameters");
  Config d = parse_config(j, "cfg.json");
  EXPECT_EQ(d.rope.type, "default");
  EXPECT_EQ(d.rope.theta, 50000.0);
}

TEST(DeepseekV3Config, QLoraRankNullMeansPlainQProj) {
  json j = tiny();
  j["q_lora_rank"] = nullptr;
  EXPECT_EQ(parse_config(j, "cfg.json").q_lora_rank, 0);
  j.erase("q_lora_rank");
  EXPECT_EQ(parse_config(j, "cfg.json").q_lora_rank, 1536);  // HF default when absent
}

// The shared experts' width: moe_intermediate_size × n_shared_experts, unless the config states it
// (shared_experts_intermediate_size: what a tensor-parallel rank's per-rank config carries under --ep,
// docs/multi_gpu.md §2.3); stated, it must be positive.
TEST(DeepseekV3Config, SharedExpertsWidth) {
  json j = tiny();
  EXPECT_EQ(parse_config(j, "cfg.json").shared_experts_intermediate_size, 32);
  j["n_shared_experts"] = 2;
  EXPECT_EQ(parse_config(j, "cfg.json").shared_experts_intermediate_size, 64);
  EXPECT_EQ(parse_config(deepseek_hub(), "cfg.json").shared_experts_intermediate_size, 2048);
  j["shared_experts_intermediate_size"] = 8;  // rank 1 of --tp 4 --ep 2: experts 16 wide, shared experts 8
  j["moe_intermediate_size"] = 16;
  const Config c = parse_config(j, "cfg.json");
  EXPECT_EQ(c.shared_experts_intermediate_size, 8);
  EXPECT_EQ(c.moe_intermediate_size, 16);
  j["shared_experts_intermediate_size"] = 0;
  expect_error(j, "shared_experts_intermediate_size must be > 0");
}

TEST(DeepseekV3Config, Errors) {
  json j = tiny();
  j["num_key_value_heads"] = 2;
  expect_error(j, "num_key_value_heads 2");
  j = tiny();
  j["moe_layer_freq"] = 2;
  expect_error(j, "moe_layer_freq 2");
  j = tiny();
  j["hidden_act"] = "gelu";
  expect_error(j, "hidden_act \"gelu\"");
  j = tiny();
  j["rope_parameters"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
  expect_error(j, "rope type \"dynamic\"");
  j = tiny();
  j["rope_parameters"] = {{"rope_type", "yarn"}};
  expect_error(j, "\"factor\"");
  j = tiny();
  j["rope_parameters"] = {{"rope_type", "default"}, {"partial_rotary_factor", 0.5}};
  expect_error(j, "partial_rotary_factor");
  j = tiny();
  j["n_group"] = 3;
  expect_error(j, "multiple of n_group 3");
  j = tiny();
  j["n_group"] = 8;
  expect_error(j, "at least 2 experts");
  j = tiny();
  j["topk_group"] = 3;
  expect_error(j, "topk_group 3");
  j = tiny();
  j["num_experts_per_tok"] = 5;
  expect_error(j, "num_experts_per_tok 5");
  j = tiny();
  j["qk_rope_head_dim"] = 7;
  expect_error(j, "qk_rope_head_dim must be even");
  j = tiny();
  j["kv_lora_rank"] = "big";
  expect_error(j, "kv_lora_rank");
  // Routing fields are not checked when every layer is dense.
  j = tiny();
  j["first_k_dense_replace"] = 3;
  j["n_group"] = 3;
  EXPECT_NO_THROW(parse_config(j, "cfg.json"));
}
