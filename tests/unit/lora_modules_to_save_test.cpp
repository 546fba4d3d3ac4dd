// modules_to_save on slices of fused projections, black-box through `hylora score`. PEFT's modules_to_save replaces
// a whole module for that adapter's rows, so an adapter whose only content is a replaced k_proj (say) must score
// exactly like the base model with that weight replaced in the checkpoint. The HF fixtures only replace lm_head
// and embed_tokens (one slice at offset 0, or no projection at all); this covers a slice at a non-zero offset of each
// fused projection the engine builds for Qwen3-MoE: k_proj and v_proj of qkv, up_proj of the dense layer's gate_up.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "fixture_support.h"

namespace {
using namespace hylora::fixtures;

std::map<std::string, std::vector<double>> score(const std::string& args, const std::vector<json>& reqs,
                                                 const fs::path& tmp, const std::string& tag) {
  write_jsonl(tmp / (tag + ".jsonl"), reqs);
  int status = 0;
  const std::string cmd = std::string(HYLORA_BINARY) + " score " + args + " < " + quote((tmp / (tag + ".jsonl")).string()) +
                          " 2>&1";
  const std::string out = run_command(cmd, status);
  std::map<std::string, std::vector<double>> lp;
  EXPECT_EQ(status, 0) << cmd << "\n" << out.substr(0, 2000);
  for (auto& r : result_lines(out))
    if (r.contains("logprobs")) lp[r["id"].get<std::string>()] = r["logprobs"].get<std::vector<double>>();
  EXPECT_EQ(lp.size(), reqs.size()) << cmd << "\n" << out.substr(0, 2000);
  return lp;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

TEST(LoraModulesToSave, ReplacedSliceOfAFusedProjectionEqualsTheReplacedBaseWeight) {
  const Case base{"qwen3_moe_causal", kRoot / "qwen3_moe_causal"};
  ASSERT_TRUE(fs::exists(base.dir / "model" / "model.safetensors")) << base.dir << " missing";
  const double limit = max_limit(base);  // float rounding of this model (its golden limit)
  const fs::path tmp = fs::temp_directory_path() / ("hylora_mts_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  const auto weights = read_safetensors(base.dir / "model" / "model.safetensors");
  const std::vector<std::pair<std::string, std::string>> targets = {
      {"k_proj", "model.layers.0.self_attn.k_proj.weight"},  // qkv rows [q | k | v]: offset |q|
      {"v_proj", "model.layers.2.self_attn.v_proj.weight"},  // offset |q| + |k|
      {"up_proj", "model.layers.1.mlp.up_proj.weight"},      // the dense layer's gate_up: offset I
  };
  std::vector<json> reqs_lora, reqs_plain;
  for (auto& r : read_jsonl(base.dir / "requests.jsonl")) {
    if (r["input_ids"].size() < 40) continue;
    reqs_plain.push_back({{"id", r["id"]}, {"input_ids", r["input_ids"]}, {"lora", nullptr}});
    for (auto& [module, name] : targets)
      reqs_lora.push_back({{"id", module + "|" + r["id"].get<std::string>()}, {"input_ids", r["input_ids"]}, {"lora", module}});
  }
  ASSERT_FALSE(reqs_plain.empty());
  std::mt19937 g(12);
  std::normal_distribution<float> noise(0.0f, 0.03f);
  std::string lora_args;
  std::map<std::string, std::string> model_args;
  for (auto& [module, name] : targets) {
    ASSERT_TRUE(weights.count(name)) << name;
    const StTensor& w = weights.at(name);
    std::vector<float> v = to_f32(w);
    for (auto& x : v) x += noise(g);
    const StTensor replaced = f32_tensor(w.shape, v);
    // The adapter: only the modules_to_save replacement, as PEFT saves it.
    const fs::path adir = tmp / ("adapter_" + module);
    fs::create_directories(adir);
    std::ofstream(adir / "adapter_config.json")
        << json{{"peft_type", "LORA"}, {"r", 4}, {"lora_alpha", 8}, {"target_modules", {"q_proj"}},
                {"modules_to_save", {module}}}.dump(2);
    write_safetensors(adir / "adapter_model.safetensors", {{"base_model.model." + name, replaced}});
    lora_args += " --lora " + quote(module + "=" + adir.string());
    // The base model with the same weight replaced.
    const fs::path mdir = tmp / ("model_" + module);
    fs::create_directories(mdir);
    fs::copy_file(base.dir / "model" / "config.json", mdir / "config.json");
    auto w2 = weights;
    w2[name] = replaced;
    write_safetensors(mdir / "model.safetensors", w2);
    model_args[module] = "--model " + quote(mdir.string());
  }
  const std::string base_model = "--model " + quote((base.dir / "model").string());
  auto with_adapters = score(base_model + lora_args + " --max-loras-per-batch 3", reqs_lora, tmp, "lora");
  auto plain = score(base_model, reqs_plain, tmp, "plain");
  for (auto& [module, name] : targets) {
    auto replaced = score(model_args[module], reqs_plain, tmp, "model_" + module);
    for (auto& r : reqs_plain) {
      const std::string id = r["id"].get<std::string>();
      const auto& a = with_adapters[module + "|" + id];
      const double same = max_abs_diff(a, replaced[id]), moved = max_abs_diff(a, plain[id]);
      std::printf("[modules_to_save] %-8s %-4s vs replaced base weight %.3g, vs base model %.3g\n", module.c_str(),
                  id.c_str(), same, moved);
      EXPECT_LE(same, limit) << module << " " << id << ": modules_to_save replacement differs from the replaced weight";
      EXPECT_GT(moved, 0.05) << module << " " << id << ": the replacement barely changes the output";
    }
  }
  fs::remove_all(tmp);
}

}  // namespace
