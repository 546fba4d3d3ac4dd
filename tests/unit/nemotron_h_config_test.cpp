// Nemotron-H config parsing: hybrid_override_pattern, layers_block_type precedence, legacy kwarg names, errors.
#include <gtest/gtest.h>

#include "test_support.h"

#include <functional>

#include "models/nemotron_h_config.h"

using namespace hylora;
using namespace hylora::nemotron_h;

namespace {
using hylora::test_support::error_of;
}  // namespace

TEST(NemotronHConfig, HybridOverridePattern) {
  auto l = parse_hybrid_override_pattern("M-M*-E", "cfg");
  std::vector<BlockType> want = {BlockType::kMamba, BlockType::kMlp,       BlockType::kMamba,
                                 BlockType::kAttention, BlockType::kMlp, BlockType::kMoe};
  EXPECT_EQ(l, want);
}

TEST(NemotronHConfig, UnknownPatternLetterIsAClearError) {
  std::string e = error_of([] { parse_hybrid_override_pattern("MEX*", "model/config.json"); });
  EXPECT_NE(e.find("model/config.json"), std::string::npos) << e;
  EXPECT_NE(e.find("'X'"), std::string::npos) << e;
  EXPECT_NE(e.find("position 2"), std::string::npos) << e;
  e = error_of([] { parse_config({{"hybrid_override_pattern", "M?"}}, "c.json"); });
  EXPECT_NE(e.find("'?'"), std::string::npos) << e;
}

TEST(NemotronHConfig, LayersBlockTypeWinsAndLegacyNamesAreRead) {
  json j = {{"vocab_size", 256},
            {"hidden_size", 64},
            {"hybrid_override_pattern", "MMMM"},
            {"layers_block_type", {"linear_attention", "moe", "full_attention", "mlp", "mamba", "attention"}},
            {"n_groups", 4},
            {"mamba_n_groups", 2},
            {"mamba_d_conv", 3},
            {"mamba_dt_min", 0.01},
            {"mamba_conv_bias", false},
            {"mamba_num_heads", 8},
            {"moe_latent_size", nullptr}};
  Config c = parse_config(j, "c.json");
  std::vector<BlockType> want = {BlockType::kMamba, BlockType::kMoe, BlockType::kAttention,
                                 BlockType::kMlp,   BlockType::kMamba, BlockType::kAttention};
  EXPECT_EQ(c.layers, want);
  EXPECT_EQ(c.n_groups, 2);
  EXPECT_EQ(c.conv_kernel, 3);
  EXPECT_FLOAT_EQ(c.time_step_min, 0.01f);
  EXPECT_FALSE(c.use_conv_bias);
  EXPECT_EQ(c.moe_latent_size, 0);
  EXPECT_EQ(c.moe_width(), 64);
}

TEST(NemotronHConfig, BadValuesAreClearErrors) {
  EXPECT_NE(error_of([] { parse_config({{"layers_block_type", {"mamba", "gdn"}}}, "c.json"); }).find("\"gdn\""),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_config({{"hybrid_override_pattern", "M"}, {"mamba_num_heads", 6}, {"n_groups", 4}}, "c.json");
            }).find("n_groups"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_config({{"hybrid_override_pattern", "E"}, {"n_routed_experts", 8}, {"n_group", 8}}, "c.json");
            }).find("at least 2 experts per group"),
            std::string::npos);
}
