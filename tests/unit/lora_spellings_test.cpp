// Every adapter spelling of lora.md §2 lands on the right slices with the right scaling: each adapter is written as
// PEFT files, served through the multi-LoRA path, and compared with the same factors merged into the weights.
#include "lora_test_support.h"

using namespace lora_test;

namespace {

constexpr uint32_t kSeed = 11;
const std::string L = "model.layers.0.";

struct Outcome {
  double diff = 0;    // served adapter vs merged reference
  double effect = 0;  // served adapter vs base model
  std::vector<std::string> warnings;
};

Outcome serve_and_compare(TinyModel& ref, const fs::path& dir, int64_t max_rank = 16) {
  TinyModel model(kSeed);
  test_support::LoraHarness mgr(model, max_rank, 4);
  mgr.load("a", dir.string());
  Outcome o;
  o.warnings = mgr.find("a")->warnings;
  auto reqs = requests_for({"a", "a", "a"}, 5);
  auto got = test_support::score_requests(model, reqs, {}, &mgr);
  for (auto& r : reqs) r.lora.reset();
  auto want = test_support::score_requests(ref, reqs, {});
  auto base = test_support::score_requests(model, reqs, {});
  for (size_t i = 0; i < reqs.size(); ++i) {
    o.diff = std::max(o.diff, max_diff(got[i], want[i]));
    o.effect = std::max(o.effect, max_diff(got[i], base[i]));
  }
  return o;
}

struct Gen {
  std::mt19937 g{3};
  Tensor A(int64_t r, int64_t in) { return randn({r, in}, g, 1.0f / std::sqrt(static_cast<float>(in))); }
  Tensor B(int64_t out, int64_t r) { return randn({out, r}, g, 0.4f); }
};

// Adds module `m` (PEFT key path) with factors of rank r and merges it into `ref` at `ref_module` with scaling s.
void plain(AdapterFiles& f, TinyModel& ref, Gen& g, const std::string& m, int64_t r, int64_t in, int64_t out,
           double s, const std::string& ref_module = "") {
  Tensor A = g.A(r, in), B = g.B(out, r);
  f.tensors[m + ".lora_A.weight"] = A;
  f.tensors[m + ".lora_B.weight"] = B;
  ref.merge_linear(ref_module.empty() ? m : ref_module, A, scaled(B, s));
}

}  // namespace

TEST(LoraSpellings, ModuleKeysOnEveryTargetWithRsloraAndPatterns) {
  auto dir = temp_dir("every");
  TinyModel ref(kSeed);
  Gen g;
  AdapterFiles f;
  // use_rslora: s = alpha / sqrt(r). Patterns are matched in the file's order (not sorted): in_proj_b takes the
  // first matching key "in_proj_b" (r=3) although ".*_b" (r=2) sorts first.
  f.config["r"] = 4;
  f.config["lora_alpha"] = 6;
  f.config["use_rslora"] = true;
  f.config["rank_pattern"] = nlohmann::ordered_json::object();
  f.config["rank_pattern"]["in_proj_b"] = 3;
  f.config["rank_pattern"][".*_b"] = 2;
  f.config["rank_pattern"]["q_proj"] = 16;  // == --max-lora-rank
  f.config["rank_pattern"]["layers.0.self_attn.k_proj"] = 1;
  f.config["rank_pattern"]["embed_tokens"] = 5;
  f.config["alpha_pattern"] = {{"down_proj", 20}, {"moe.gate.weight", 3}};
  f.config["target_parameters"] = {"moe.gate.weight"};
  auto rs = [](double alpha, int64_t r) { return alpha / std::sqrt(static_cast<double>(r)); };
  plain(f, ref, g, L + "self_attn.q_proj", 16, H, Q, rs(6, 16));
  plain(f, ref, g, L + "self_attn.k_proj", 1, H, KV, rs(6, 1));
  plain(f, ref, g, L + "self_attn.v_proj", 4, H, KV, rs(6, 4));
  plain(f, ref, g, L + "self_attn.o_proj", 4, Q + 2 * KV, H, rs(6, 4));
  plain(f, ref, g, L + "linear_attn.in_proj_qkv", 4, H, 2 * GQ + GV, rs(6, 4));
  plain(f, ref, g, L + "linear_attn.in_proj_z", 4, H, GZ, rs(6, 4));
  plain(f, ref, g, L + "linear_attn.in_proj_b", 3, H, GB, rs(6, 3));
  plain(f, ref, g, L + "linear_attn.in_proj_a", 4, H, GB, rs(6, 4));
  plain(f, ref, g, L + "linear_attn.out_proj", 4, 2 * GQ + GV + GZ + 2 * GB, H, rs(6, 4));
  plain(f, ref, g, L + "mlp.gate_proj", 4, H, I, rs(6, 4));
  plain(f, ref, g, L + "mlp.up_proj", 4, H, I, rs(6, 4));
  plain(f, ref, g, L + "mlp.down_proj", 4, I, H, rs(20, 4));
  plain(f, ref, g, L + "moe.gate", 4, H, E, rs(3, 4));  // router via target_parameters (scaled by "…gate.weight")
  plain(f, ref, g, "lm_head", 4, H, V, rs(6, 4));
  Tensor eA = g.A(5, V), eB = g.B(H, 5);
  f.tensors["model.embed_tokens.lora_embedding_A"] = eA;
  f.tensors["model.embed_tokens.lora_embedding_B"] = eB;
  ref.merge_embedding(eA, scaled(eB, rs(6, 5)));
  f.write(dir);
  auto o = serve_and_compare(ref, dir);
  EXPECT_LT(o.diff, 2e-5);
  EXPECT_GT(o.effect, 0.05);
}

TEST(LoraSpellings, PreFusedQkvGateUpAndInProjQkvz) {
  auto dir = temp_dir("fused");
  TinyModel ref(kSeed);
  Gen g;
  AdapterFiles f;  // r 4, alpha 8: s = 2
  const double s = 2.0;
  auto fused = [&](const std::string& parent, const std::string& leaf, std::vector<std::pair<std::string, int64_t>> parts) {
    int64_t rows = 0;
    for (auto& p : parts) rows += p.second;
    Tensor A = g.A(4, H), B = g.B(rows, 4);
    f.tensors[parent + leaf + ".lora_A.weight"] = A;
    f.tensors[parent + leaf + ".lora_B.weight"] = B;
    int64_t off = 0;
    for (auto& [m, n] : parts) {
      ref.merge_linear(parent + m, A, scaled(B.rows(off, off + n).clone(), s));
      off += n;
    }
  };
  fused(L + "self_attn.", "qkv_proj", {{"q_proj", Q}, {"k_proj", KV}, {"v_proj", KV}});
  fused(L + "mlp.", "gate_up_proj", {{"gate_proj", I}, {"up_proj", I}});
  fused(L + "linear_attn.", "in_proj_qkvz", {{"in_proj_qkv", 2 * GQ + GV}, {"in_proj_z", GZ}});
  f.write(dir);
  auto o = serve_and_compare(ref, dir);
  EXPECT_LT(o.diff, 2e-5);
  EXPECT_GT(o.effect, 0.05);
}

TEST(LoraSpellings, InProjSplitFourWays) {
  // in_proj_q/k/v land on rows of the in_proj_qkv slice (stacked along the rank), in_proj_z on its own slice.
  auto dir = temp_dir("fourway");
  TinyModel ref(kSeed);
  Gen g;
  AdapterFiles f;
  f.config["r"] = 2;
  f.config["lora_alpha"] = 3;
  const double s = 1.5;
  Tensor Ws[3];
  const int64_t sizes[3] = {GQ, GQ, GV};
  const char* names[3] = {"in_proj_q", "in_proj_k", "in_proj_v"};
  Tensor delta_B = Tensor::zeros({2 * GQ + GV, 6});  // merged as one rank-6 factor pair
  Tensor delta_A = Tensor::zeros({6, H});
  int64_t off = 0;
  for (int k = 0; k < 3; ++k) {
    Tensor A = g.A(2, H), B = g.B(sizes[k], 2);
    f.tensors[L + "linear_attn." + names[k] + ".lora_A.weight"] = A;
    f.tensors[L + "linear_attn." + names[k] + ".lora_B.weight"] = B;
    std::copy_n(A.f32(), 2 * H, delta_A.f32() + k * 2 * H);
    for (int64_t o = 0; o < sizes[k]; ++o)
      for (int j = 0; j < 2; ++j) delta_B.f32()[(off + o) * 6 + k * 2 + j] = static_cast<float>(s * B.f32()[o * 2 + j]);
    off += sizes[k];
  }
  ref.merge_linear(L + "linear_attn.in_proj_qkv", delta_A, delta_B);
  plain(f, ref, g, L + "linear_attn.in_proj_z", 2, H, GZ, s);
  f.write(dir);
  auto o = serve_and_compare(ref, dir);
  EXPECT_LT(o.diff, 2e-5);
  EXPECT_GT(o.effect, 0.05);
}

namespace {
// target_parameters experts: A [E·r, in] (expert-major), B [out, E·r] (column j·E + e); merged per expert.
void experts_param(AdapterFiles& f, TinyModel& ref, Gen& g, const std::string& key_module, bool gate_up, int64_t r,
                   double s) {
  const int64_t in = gate_up ? H : IE, out = gate_up ? 2 * IE : H;
  Tensor A = g.A(E * r, in), B = g.B(out, E * r);
  f.tensors[key_module + ".lora_A.weight"] = A;
  f.tensors[key_module + ".lora_B.weight"] = B;
  merge_experts_param(ref, A, B, r, s, gate_up);
}
}  // namespace

TEST(LoraSpellings, ExpertsTargetParametersNestedBaseLayer) {
  // Both parameters targeted: gate_up_proj (registered first) is innermost -> experts.base_layer.lora_*,
  // down_proj -> experts.lora_*. rank_pattern gives down_proj its own rank and alpha.
  auto dir = temp_dir("experts_nested");
  TinyModel ref(kSeed);
  Gen g;
  AdapterFiles f;
  f.config["target_parameters"] = {"moe.experts.gate_up_proj", "moe.experts.down_proj"};
  f.config["rank_pattern"] = {{"experts.down_proj", 2}};
  f.config["alpha_pattern"] = {{"experts.down_proj", 5}};
  experts_param(f, ref, g, L + "moe.experts.base_layer", true, 4, 2.0);
  experts_param(f, ref, g, L + "moe.experts", false, 2, 2.5);
  f.write(dir);
  auto o = serve_and_compare(ref, dir);
  EXPECT_LT(o.diff, 2e-5);
  EXPECT_GT(o.effect, 0.05);
}

TEST(LoraSpellings, ExpertsSingleTargetParameterHasNoNesting) {
  for (bool gate_up : {true, false}) {
    auto dir = temp_dir(gate_up ? "experts_gu_only" : "experts_down_only");
    TinyModel ref(kSeed);
    Gen g;
    AdapterFiles f;
    f.config["target_parameters"] = {gate_up ? "moe.experts.gate_up_proj" : "moe.experts.down_proj"};
    experts_param(f, ref, g, L + "moe.experts", gate_up, 4, 2.0);
    f.write(dir);
    auto o = serve_and_compare(ref, dir);
    EXPECT_LT(o.diff, 2e-5) << gate_up;
    EXPECT_GT(o.effect, 0.05) << gate_up;
  }
}

TEST(LoraSpellings, PerExpertKeysGateUpDownAndW1W3W2) {
  for (bool mixtral : {false, true}) {
    auto dir = temp_dir(mixtral ? "per_expert_w" : "per_expert");
    TinyModel ref(kSeed);
    Gen g;
    AdapterFiles f;
    const std::vector<std::pair<std::string, std::string>> parts =
        mixtral ? std::vector<std::pair<std::string, std::string>>{{"w1", "gate_proj"}, {"w3", "up_proj"}, {"w2", "down_proj"}}
                : std::vector<std::pair<std::string, std::string>>{
                      {"gate_proj", "gate_proj"}, {"up_proj", "up_proj"}, {"down_proj", "down_proj"}};
    for (int64_t e = 0; e < E - 1; ++e)  // the last expert has no LoRA: partial per-expert adapters add nothing there
      for (auto& [leaf, canon] : parts) {
        const bool down = canon == "down_proj";
        Tensor A = g.A(4, down ? IE : H), B = g.B(down ? H : IE, 4);
        const std::string m = L + "moe.experts." + std::to_string(e) + "." + leaf;
        f.tensors[m + ".lora_A.weight"] = A;
        f.tensors[m + ".lora_B.weight"] = B;
        ref.merge_expert(L + "moe.experts." + canon, e, A, scaled(B, 2.0));
      }
    f.write(dir);
    auto o = serve_and_compare(ref, dir);
    EXPECT_LT(o.diff, 2e-5) << mixtral;
    EXPECT_GT(o.effect, 0.05) << mixtral;
  }
}

TEST(LoraSpellings, PartialAdaptersTouchOnlyTheirSlices) {
  auto dir = temp_dir("partial");
  TinyModel ref(kSeed);
  Gen g;
  AdapterFiles f;
  plain(f, ref, g, L + "self_attn.q_proj", 4, H, Q, 2.0);
  plain(f, ref, g, L + "self_attn.v_proj", 4, H, KV, 2.0);
  plain(f, ref, g, L + "mlp.gate_proj", 4, H, I, 2.0);
  plain(f, ref, g, L + "linear_attn.in_proj_qkv", 4, H, 2 * GQ + GV, 2.0);
  f.write(dir);
  auto o = serve_and_compare(ref, dir);
  EXPECT_LT(o.diff, 2e-5);
  EXPECT_GT(o.effect, 0.05);
}

TEST(LoraSpellings, ModulesToSaveReplacesLmHeadForThatAdapterOnly) {
  auto dir = temp_dir("modules_to_save");
  TinyModel ref(kSeed), base(kSeed);
  Gen g;
  AdapterFiles f;
  f.config["modules_to_save"] = {"lm_head"};
  plain(f, ref, g, L + "self_attn.q_proj", 4, H, Q, 2.0);
  Tensor W = base.lm_head().weight.clone();
  Tensor noise = randn({V, H}, g.g, 0.3f);
  for (int64_t i = 0; i < W.numel(); ++i) W.f32()[i] += noise.f32()[i];
  f.tensors["lm_head.weight"] = W;
  std::copy_n(W.f32(), W.numel(), ref.lm_head().weight.f32());
  // save_embedding_layers copies equal to the base: no effect.
  f.tensors["model.embed_tokens.base_layer.weight"] = base.embedding().table.clone();
  f.write(dir);
  auto o = serve_and_compare(ref, dir);
  EXPECT_LT(o.diff, 2e-5);
  EXPECT_GT(o.effect, 0.05);
}

TEST(LoraSpellings, ConditionalGenerationPrefixAndVisionTowerSkippedWithOneWarning) {
  auto dir = temp_dir("cg_prefix");
  TinyModel ref(kSeed);
  Gen g;
  AdapterFiles f;
  Tensor A = g.A(4, H), B = g.B(Q, 4);
  f.tensors["model.language_model.layers.0.self_attn.q_proj.lora_A.weight"] = A;
  f.tensors["model.language_model.layers.0.self_attn.q_proj.lora_B.weight"] = B;
  ref.merge_linear(L + "self_attn.q_proj", A, scaled(B, 2.0));
  f.tensors["model.visual.blocks.0.attn.qkv.lora_A.weight"] = g.A(4, 6);
  f.tensors["model.visual.blocks.0.attn.qkv.lora_B.weight"] = g.B(18, 4);
  f.tensors["model.visual.blocks.0.mlp.linear_fc1.lora_A.weight"] = g.A(4, 6);
  f.write(dir);
  auto o = serve_and_compare(ref, dir);
  EXPECT_LT(o.diff, 2e-5);
  EXPECT_GT(o.effect, 0.05);
  ASSERT_EQ(o.warnings.size(), 1u);
  EXPECT_NE(o.warnings[0].find("skipped 3 tensor(s)"), std::string::npos) << o.warnings[0];
}

TEST(LoraSpellings, Bf16AdapterFile) {
  auto dir = temp_dir("bf16");
  TinyModel ref(kSeed);
  Gen g;
  AdapterFiles f;
  auto round_bf16 = [](Tensor t) {
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = bf16_to_f32(f32_to_bf16(t.f32()[i]));
    return t;
  };
  Tensor A = round_bf16(g.A(4, H)), B = round_bf16(g.B(2 * I, 4));
  f.tensors[L + "mlp.gate_up_proj.lora_A.weight"] = A;
  f.tensors[L + "mlp.gate_up_proj.lora_B.weight"] = B;
  ref.merge_linear(L + "mlp.gate_proj", A, scaled(B.rows(0, I).clone(), 2.0));
  ref.merge_linear(L + "mlp.up_proj", A, scaled(B.rows(I, 2 * I).clone(), 2.0));
  f.write(dir, DType::BF16);
  auto o = serve_and_compare(ref, dir);
  EXPECT_LT(o.diff, 2e-5);
  EXPECT_GT(o.effect, 0.05);
}

TEST(LoraSpellings, ExpertsWithOneSharedA) {
  // Shared-outer experts: lora_A [r, in] used by every expert (the shapes say so), lora_B [out, E·r] per expert.
  auto dir = temp_dir("experts_shared_a");
  TinyModel ref(kSeed);
  Gen g;
  AdapterFiles f;
  f.config["target_parameters"] = {"moe.experts.down_proj"};
  Tensor A = g.A(4, IE), B = g.B(H, E * 4);
  f.tensors[L + "moe.experts.lora_A.weight"] = A;
  f.tensors[L + "moe.experts.lora_B.weight"] = B;
  for (int64_t e = 0; e < E; ++e) ref.merge_expert(L + "moe.experts.down_proj", e, A, scaled(expert_cols(B, e, E), 2.0));
  f.write(dir);
  auto o = serve_and_compare(ref, dir);
  EXPECT_LT(o.diff, 2e-5);
  EXPECT_GT(o.effect, 0.05);
}
