// --layers (models/layer_truncation.h): the kept layers keep the mix of kinds of every bench config, the truncated
// config parses as its family with N layers, and bad counts are refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "models/deepseek_v3_config.h"
#include "models/layer_truncation.h"
#include "models/nemotron_h_config.h"
#include "models/qwen3_5_config.h"
#include "test_support.h"

namespace {

using namespace hylora;
namespace fs = std::filesystem;

const fs::path kConfigs = fs::path(HYLORA_FIXTURES_DIR) / ".." / ".." / "bench" / "configs";

std::map<std::string, int64_t> count(const std::vector<std::string>& kinds) {
  std::map<std::string, int64_t> c;
  for (auto& k : kinds) ++c[k];
  return c;
}

TruncatedConfig truncate(const std::string& file, int64_t n) {
  const std::string path = (kConfigs / file).string();
  return truncate_layers(read_json_file(path), n, path);
}

TEST(LayerTruncation, Qwen35KeepsThreeGdnPerAttentionLayer) {
  for (const char* file : {"qwen3_5_4b.json", "qwen3_5_27b.json", "qwen3_5_35b_a3b.json"}) {
    TruncatedConfig t = truncate(file, 8);
    auto c = count(t.kinds);
    EXPECT_EQ(c["linear_attention"], 6) << file;
    EXPECT_EQ(c["full_attention"], 2) << file;
    const json& text = t.config["text_config"];
    EXPECT_EQ(text["num_hidden_layers"], 8);
    EXPECT_EQ(text["layer_types"].get<std::vector<std::string>>(), t.kinds);
    qwen3_5::Config parsed = qwen3_5::parse_config(t.config, file);
    EXPECT_EQ(parsed.layers.size(), 8u) << file;
    EXPECT_TRUE(std::is_sorted(t.kept.begin(), t.kept.end()));
  }
  // Fewer layers than kinds' ratio allows: still one of each kind.
  auto c = count(truncate("qwen3_5_4b.json", 2).kinds);
  EXPECT_EQ(c["linear_attention"], 1);
  EXPECT_EQ(c["full_attention"], 1);
}

TEST(LayerTruncation, NemotronKeepsMambaMoeAndAttention) {
  for (const char* file : {"nemotron_3_nano_30b_a3b.json", "nemotron_3_super_120b_a12b.json"}) {
    TruncatedConfig t = truncate(file, 8);
    auto c = count(t.kinds);
    EXPECT_GE(c["M"], 3) << file;
    EXPECT_GE(c["E"], 3) << file;
    EXPECT_EQ(c["*"], 1) << file;
    std::string pattern;
    for (auto& k : t.kinds) pattern += k;
    EXPECT_EQ(t.config["hybrid_override_pattern"], pattern);
    nemotron_h::Config parsed = nemotron_h::parse_config(t.config, file);
    EXPECT_EQ(parsed.layers.size(), 8u) << file;
  }
}

TEST(LayerTruncation, DeepSeekKeepsDenseLayersFirst) {
  TruncatedConfig d = truncate("deepseek_v3.json", 4);  // 3 dense + 58 MoE
  EXPECT_EQ(d.kinds, (std::vector<std::string>{"dense", "moe", "moe", "moe"}));
  EXPECT_EQ(d.config["first_k_dense_replace"], 1);
  EXPECT_EQ(deepseek_v3::parse_config(d.config, "deepseek_v3.json").num_layers, 4);
  TruncatedConfig k = truncate("kimi_k2.json", 3);  // 1 dense + 60 MoE
  EXPECT_EQ(k.kinds, (std::vector<std::string>{"dense", "moe", "moe"}));
  EXPECT_EQ(k.config["first_k_dense_replace"], 1);
  EXPECT_NE(k.describe().find("3 of 61 layers"), std::string::npos);
}

TEST(LayerTruncation, ApportionsByLargestRemainderAndSpreadsEvenly) {
  std::vector<std::string> kinds;
  for (int i = 0; i < 12; ++i) kinds.push_back(i % 4 == 3 ? "attn" : "gdn");
  EXPECT_EQ(select_representative_layers(kinds, 4), (std::vector<int64_t>{1, 5, 7, 9}));
  EXPECT_EQ(select_representative_layers(kinds, 12).size(), 12u);
  EXPECT_NE(test_support::error_of([&] { select_representative_layers(kinds, 13); }).find("between 1 and"),
            std::string::npos);
  EXPECT_NE(test_support::error_of([&] { truncate("qwen3_5_4b.json", 0); }).find("--layers 0"), std::string::npos);
  json other = {{"model_type", "llama"}, {"num_hidden_layers", 4}};
  EXPECT_NE(test_support::error_of([&] { truncate_layers(other, 2, "x.json"); }).find("not model_type \"llama\""),
            std::string::npos);
}

}  // namespace
