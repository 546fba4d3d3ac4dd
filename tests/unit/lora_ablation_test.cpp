// Per-module ablation of every adapter fixture, from the engine's own output (the real `hylora score` binary).
//
// For each adapter of each adapter case, the tensors are split into target groups (one PEFT module path with the
// layer and expert index wildcarded: `model.layers.*.self_attn.k_proj`, `model.layers.*.mlp.experts.base_layer`
// (gate_up), `model.layers.*.mlp.experts.*.w3`, `lm_head.weight` (modules_to_save), `model.embed_tokens`, ...).
// A copy of the adapter without one group is written to a scratch directory and scored beside the full adapter on
// the adapter's longest request. The result must move by more than twice the fixture's golden limit
// (limits.json), and by at least kVisible: so an engine that skipped that group (or a slice of a fused projection,
// or an expert spelling, ...) would fail the golden comparison of that fixture, whatever else is right. Dropping the
// whole adapter (lora: null) must move it by more than 0.05.
//
// Groups the engine ignores by contract are checked the other way round (dropping them changes nothing beyond float
// rounding, i.e. less than the fixture's golden limit: the variant sits elsewhere in the batch, and OpenBLAS may round
// rows differently by their place in a block): vision-tower keys (`model.visual.*`) and the full base-layer copies that PEFT writes with
// save_embedding_layers=True (`*.base_layer.weight`, equal to the base).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "fixture_support.h"

namespace {
using namespace hylora::fixtures;

constexpr double kVisible = 1e-3;   // smallest move that counts as visible (the golden limits are 4e-6 .. 1.4e-3)
constexpr double kWholeAdapter = 0.05;

// "base_model.model.model.layers.3.mlp.experts.7.w1.lora_A.weight" -> "model.layers.*.mlp.experts.*.w1"
std::string group_of(const std::string& key) {
  static const std::regex prefix(R"(^base_model\.model\.)"), layer(R"(\.(layers|blocks)\.\d+\.)"),
      expert(R"(\.experts\.\d+\.)"), lora(R"(\.lora_(A|B|embedding_A|embedding_B)(\.weight)?$)");
  std::string g = std::regex_replace(key, prefix, "");
  g = std::regex_replace(g, layer, ".$1.*.");
  g = std::regex_replace(g, expert, ".experts.*.");
  return std::regex_replace(g, lora, "");
}

bool ignored_by_contract(const std::string& group) {
  const std::string copy = ".base_layer.weight";
  return group.find("visual.") != std::string::npos ||
         (group.size() > copy.size() && group.compare(group.size() - copy.size(), copy.size(), copy) == 0);
}

class LoraAblation : public ::testing::TestWithParam<Case> {};

TEST_P(LoraAblation, DroppingAnyTargetGroupVisiblyChangesTheOutput) {
  const Case& c = GetParam();
  ASSERT_TRUE(fs::exists(c.dir / "case.json")) << c.dir << " missing";
  const json cfg = read_json(c.dir / "case.json");
  const double limit = max_limit(c);
  const double need = std::max(2 * limit, kVisible);
  const auto requests = read_jsonl(c.dir / "requests.jsonl");
  const fs::path tmp = fs::temp_directory_path() / ("hylora_ablation_" + c.name + "_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  struct Variant {
    std::string adapter, group, lora;  // lora: the name scored ("" = the base model)
    bool no_op;
  };
  std::vector<Variant> variants;
  std::vector<std::pair<std::string, fs::path>> loras;  // --lora name=dir
  std::map<std::string, json> longest;                   // adapter -> its longest request
  for (auto& r : requests)
    if (r.contains("lora") && !r["lora"].is_null()) {
      auto& cur = longest[r["lora"].get<std::string>()];
      if (cur.is_null() || r["input_ids"].size() > cur["input_ids"].size()) cur = r;
    }
  for (auto& [name, rel] : cfg.at("adapters").items()) {
    const fs::path dir = c.dir / rel.get<std::string>();
    loras.push_back({name, dir});
    ASSERT_TRUE(longest.count(name)) << c.name << ": adapter " << name << " has no request";
    std::map<std::string, std::vector<std::string>> groups;
    for (auto& key : safetensors_names(dir / "adapter_model.safetensors")) groups[group_of(key)].push_back(key);
    size_t served = 0;
    for (auto& [g, keys] : groups) served += !ignored_by_contract(g);
    variants.push_back({name, "(whole adapter)", "", false});
    if (served < 2 && groups.size() < 2) continue;  // one group only: the whole-adapter check is the ablation
    int k = 0;
    for (auto& [g, keys] : groups) {
      const bool no_op = ignored_by_contract(g);
      if (!no_op && served < 2) continue;  // dropping it leaves nothing to serve: same as the whole adapter
      const std::string vname = name + "~" + std::to_string(k++);
      const fs::path vdir = tmp / vname;
      fs::create_directories(vdir);
      fs::copy_file(dir / "adapter_config.json", vdir / "adapter_config.json");
      const std::set<std::string> drop(keys.begin(), keys.end());
      copy_safetensors_without(dir / "adapter_model.safetensors", vdir / "adapter_model.safetensors",
                               [&](const std::string& n) { return drop.count(n) > 0; });
      loras.push_back({vname, vdir});
      variants.push_back({name, g, vname, no_op});
    }
  }

  // One run: every adapter on its longest request, every variant on the same ids, the base model too.
  std::vector<json> reqs;
  for (auto& [name, r] : longest) reqs.push_back({{"id", name + "|full"}, {"input_ids", r["input_ids"]}, {"lora", name}});
  for (size_t i = 0; i < variants.size(); ++i) {
    const auto& v = variants[i];
    json lora = v.lora.empty() ? json(nullptr) : json(v.lora);
    reqs.push_back({{"id", "v" + std::to_string(i)}, {"input_ids", longest[v.adapter]["input_ids"]}, {"lora", lora}});
  }
  write_jsonl(tmp / "requests.jsonl", reqs);
  std::string cmd = std::string(HYLORA_BINARY) + " score --model " + quote((c.dir / "model").string());
  for (auto& [n, d] : loras) cmd += " --lora " + quote(n + "=" + d.string());
  const json args = cfg.value("score_args", json::array());
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--max-loras-per-batch") {
      ++i;
      continue;
    }
    cmd += " " + quote(args[i].get<std::string>());
  }
  cmd += " --max-loras-per-batch " + std::to_string(loras.size()) + " < " + quote((tmp / "requests.jsonl").string()) +
         " 2>/dev/null";
  int status = 0;
  const auto got = result_lines(run_command(cmd, status));
  ASSERT_EQ(status, 0) << cmd;
  ASSERT_EQ(got.size(), reqs.size()) << cmd;
  std::map<std::string, std::vector<double>> lp;
  for (auto& g : got) {
    ASSERT_TRUE(g.contains("logprobs")) << g.dump();
    lp[g["id"].get<std::string>()] = g["logprobs"].get<std::vector<double>>();
  }
  for (size_t i = 0; i < variants.size(); ++i) {
    const auto& v = variants[i];
    const auto& a = lp.at(v.adapter + "|full");
    const auto& b = lp.at("v" + std::to_string(i));
    ASSERT_EQ(a.size(), b.size());
    double d = 0;
    for (size_t k = 0; k < a.size(); ++k) d = std::max(d, std::fabs(a[k] - b[k]));
    std::printf("[ablation] %-24s %-24s drop %-52s max|dlogprob| = %.3g\n", c.name.c_str(), v.adapter.c_str(),
                v.group.c_str(), d);
    if (v.lora.empty())
      EXPECT_GT(d, kWholeAdapter) << c.name << ": adapter " << v.adapter << " barely changes the engine's output";
    else if (v.no_op)
      EXPECT_LE(d, limit) << c.name << ": adapter " << v.adapter << ": group " << v.group
                          << " should be ignored, but dropping it changes the output";
    else
      EXPECT_GT(d, need) << c.name << ": adapter " << v.adapter << ": dropping " << v.group
                         << " moves the output less than 2x the golden limit (" << limit
                         << "): a skipped or wrong path there would go unnoticed";
  }
  fs::remove_all(tmp);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LoraAblation, ::testing::ValuesIn(adapter_cases()), case_name);

}  // namespace
