#pragma once
// Test support for the LoRA tests: a tiny synthetic model that declares one projection of every LoRA shape
// (3-slice qkv, 4-slice GDN in_proj, 2-slice gate_up, unfused o/out/down, a router, gated experts gate_up/down, the
// embedding and lm_head), random PEFT factors, adapter files in any spelling, and the reference: the same model
// with every factor merged into its weights (W' = W + s·B·A), run without LoRA.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/error.h"
#include "test_support.h"
#include "engine/scorer.h"
#include "io/safetensors_writer.h"
#include "models/linear_forward.h"
#include "models/shared_layers.h"
#include "models/model.h"
#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/moe.h"

namespace lora_test {

using namespace hylora;
namespace fs = std::filesystem;
using json = nlohmann::json;

using hylora::test_support::temp_dir;

inline Tensor randn(Shape s, std::mt19937& g, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  Tensor t = Tensor::empty(std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = d(g);
  return t;
}

using hylora::test_support::error_of;

// Sizes of the tiny model.
constexpr int64_t V = 13, H = 8;
constexpr int64_t Q = 8, KV = 4;                      // qkv: q 8 | k 4 | v 4
constexpr int64_t GQ = 4, GV = 4, GZ = 6, GB = 2;     // GDN in_proj: qkv (4|4|4) | z 6 | b 2 | a 2
constexpr int64_t I = 6;                              // MLP
constexpr int64_t E = 4, TOPK = 2, IE = 5;            // experts

class TinyModel : public Model {
 public:
  explicit TinyModel(uint32_t seed, std::string root = "model.") : root_(std::move(root)) {
    std::mt19937 g(seed);
    const std::string L = "model.layers.0.";
    emb_.module = "model.embed_tokens";
    emb_.table = randn({V, H}, g, 1.0f);
    auto lin = [&](Linear& l, const std::string& name, int64_t out, int64_t in,
                   std::vector<std::pair<std::string, int64_t>> parts) {
      l.name = name;
      l.weight = randn({out, in}, g, 0.6f / std::sqrt(static_cast<float>(in)));
      int64_t off = 0;
      for (auto& [m, n] : parts) {
        l.slices.push_back({m, off, n});
        off += n;
      }
      EXPECT_EQ(off, out) << name;
    };
    lin(qkv_, L + "self_attn.qkv", Q + 2 * KV, H,
        {{L + "self_attn.q_proj", Q}, {L + "self_attn.k_proj", KV}, {L + "self_attn.v_proj", KV}});
    lin(o_, L + "self_attn.o_proj", H, Q + 2 * KV, {{L + "self_attn.o_proj", H}});
    const int64_t gdn = 2 * GQ + GV + GZ + 2 * GB;
    lin(in_proj_, L + "linear_attn.in_proj", gdn, H,
        {{L + "linear_attn.in_proj_qkv", 2 * GQ + GV}, {L + "linear_attn.in_proj_z", GZ},
         {L + "linear_attn.in_proj_b", GB}, {L + "linear_attn.in_proj_a", GB}});
    lin(out_proj_, L + "linear_attn.out_proj", H, gdn, {{L + "linear_attn.out_proj", H}});
    lin(gate_up_, L + "mlp.gate_up", 2 * I, H, {{L + "mlp.gate_proj", I}, {L + "mlp.up_proj", I}});
    lin(down_, L + "mlp.down_proj", H, I, {{L + "mlp.down_proj", H}});
    lin(router_, L + "moe.gate", E, H, {{L + "moe.gate", E}});
    ex_gate_up_.name = L + "moe.experts.gate_up_proj";
    ex_gate_up_.weight = randn({E, 2 * IE, H}, g, 0.3f);
    ex_gate_up_.slices = {{L + "moe.experts.gate_proj", 0, IE}, {L + "moe.experts.up_proj", IE, IE}};
    ex_down_.name = L + "moe.experts.down_proj";
    ex_down_.weight = randn({E, H, IE}, g, 0.3f);
    ex_down_.slices = {{L + "moe.experts.down_proj", 0, H}};
    lin(lm_head_, "lm_head", V, H, {{"lm_head", V}});
    for (Linear* l : {&qkv_, &o_, &in_proj_, &out_proj_, &gate_up_, &down_, &router_, &lm_head_}) {
      l->lora_id = static_cast<int>(lora_targets_.linears.size());
      lora_targets_.linears.push_back(l);
    }
    for (ExpertLinear* l : {&ex_gate_up_, &ex_down_}) {
      l->lora_id = static_cast<int>(lora_targets_.experts.size());
      lora_targets_.experts.push_back(l);
    }
    emb_.lora_id = 0;
    lora_targets_.embedding = &emb_;
  }

  std::string architecture() const override { return "TinyLoraModel"; }
  int64_t vocab_size() const override { return V; }
  int64_t hidden_size() const override { return H; }
  int64_t num_layers() const override { return 1; }
  std::vector<std::pair<std::string, std::string>> adapter_prefix_aliases() const override {
    return {{"model.language_model.", "model."}};
  }
  std::vector<std::string> unserved_prefixes() const override { return {"model.visual.", "mtp."}; }

  std::vector<LayerCacheSpec> cache_specs() const override { return {LayerCacheSpec{}}; }

  // Per-token (no mixing across positions), so any batching must give the same numbers.
  void forward(const ForwardArgs& a, Tensor& logits) override {
    const int64_t T = a.step.num_tokens();
    Tensor x = a.tmp({T, H});
    embed(a, emb_, x);
    Tensor ones = a.tmp({H});
    std::fill(ones.f32(), ones.f32() + H, 1.0f);
    auto norm = [&](const Tensor& t) {
      Tensor y = a.tmp({t.dim(0), t.dim(1)});
      ops::rms_norm(a.ctx, t, ones, t.dim(1), 1e-6f, ops::NormKind::kPlain, y);
      return y;
    };
    auto act = [](Tensor t) {
      for (int64_t r = 0; r < t.dim(0); ++r)
        for (int64_t c = 0; c < t.dim(1); ++c) t.f32()[r * t.ld() + c] = std::tanh(t.f32()[r * t.ld() + c]);
      return t;
    };
    ops::add(a.ctx, linear(a, o_, act(linear(a, qkv_, norm(x)))), x);
    ops::add(a.ctx, linear(a, out_proj_, act(linear(a, in_proj_, norm(x)))), x);
    Tensor gu = linear(a, gate_up_, norm(x));  // [T, 2I]
    Tensor act_gu = a.tmp({T, I});
    ops::silu_mul_halves(a.ctx, gu, act_gu);
    ops::add(a.ctx, linear(a, down_, act_gu), x);
    Tensor h = norm(x);
    Tensor ids = a.tmp({T, TOPK}, DType::I32), weights = a.tmp({T, TOPK});
    ops::route_softmax_topk(a.ctx, linear(a, router_, h), TOPK, /*normalize=*/true, ids, weights);
    Tensor moe = a.tmp({T, H});
    moe_experts(a, h, ids, weights, ex_gate_up_, ex_down_, ExpertActivation::kSiluGated, moe);
    ops::add(a.ctx, moe, x);
    logits_head(a, x, ones, 1e-6f, ops::NormKind::kPlain, lm_head_, logits);
  }

  // Reference merge: W[slice rows] += B·A (scaling already in B).
  void merge_linear(const std::string& module, const Tensor& A, const Tensor& B) {
    for (Linear* l : lora_targets_.linears)
      for (auto& s : l->slices)
        if (s.module == module) {
          Tensor d = test_support::matmul_nt(B, transpose(A));  // [out_size, in]
          ASSERT_EQ(d.dim(0), s.out_size) << module;
          for (int64_t i = 0; i < d.numel(); ++i) l->weight.f32()[s.out_offset * l->in_features() + i] += d.f32()[i];
          return;
        }
    FAIL() << "no linear slice " << module;
  }
  void merge_expert(const std::string& slice_module, int64_t e, const Tensor& A, const Tensor& B) {
    for (ExpertLinear* l : lora_targets_.experts)
      for (auto& s : l->slices)
        if (s.module == slice_module) {
          Tensor d = test_support::matmul_nt(B, transpose(A));  // [out_size, in]
          float* w = l->weight.f32() + (e * l->out_features() + s.out_offset) * l->in_features();
          for (int64_t i = 0; i < d.numel(); ++i) w[i] += d.f32()[i];
          return;
        }
    FAIL() << "no expert slice " << slice_module;
  }
  void merge_embedding(const Tensor& A /*[r, V]*/, const Tensor& B /*[H, r]*/) {
    Tensor d = test_support::matmul_nt(transpose(A), B);  // [V, H]
    for (int64_t i = 0; i < d.numel(); ++i) emb_.table.f32()[i] += d.f32()[i];
  }
  Linear& lm_head() { return lm_head_; }
  Embedding& embedding() { return emb_; }

  static Tensor transpose(const Tensor& t) {
    Tensor o = Tensor::empty({t.dim(1), t.dim(0)});
    for (int64_t i = 0; i < t.dim(0); ++i)
      for (int64_t j = 0; j < t.dim(1); ++j) o.f32()[j * t.dim(0) + i] = t.f32()[i * t.dim(1) + j];
    return o;
  }

 private:
  std::string root_;
  Embedding emb_;
  Linear qkv_, o_, in_proj_, out_proj_, gate_up_, down_, router_, lm_head_;
  ExpertLinear ex_gate_up_, ex_down_;
};

// One PEFT adapter under construction: tensors by key (without base_model.model.) and its config.
struct AdapterFiles {
  std::map<std::string, Tensor> tensors;
  // ordered: rank_pattern/alpha_pattern precedence is the file's key order
  nlohmann::ordered_json config = {{"peft_type", "LORA"}, {"r", 4}, {"lora_alpha", 8}, {"use_rslora", false}};

  void write(const fs::path& dir, DType as = DType::F32, const std::string& prefix = "base_model.model.") const {
    fs::create_directories(dir);
    std::map<std::string, Tensor> out;
    for (auto& [k, v] : tensors) out[prefix + k] = v;
    write_safetensors((dir / "adapter_model.safetensors").string(), out, as);
    std::ofstream(dir / "adapter_config.json") << config.dump(2);
  }
};

inline Tensor scaled(const Tensor& t, double s) {
  Tensor o = t.clone();
  for (int64_t i = 0; i < o.numel(); ++i) o.f32()[i] = static_cast<float>(o.f32()[i] * s);
  return o;
}

// Columns of B [out, E·r] for expert e (PEFT target_parameters layout: column j·E + e).
inline Tensor expert_cols(const Tensor& B, int64_t e, int64_t n_experts) {
  const int64_t r = B.dim(1) / n_experts;
  Tensor o = Tensor::empty({B.dim(0), r});
  for (int64_t i = 0; i < B.dim(0); ++i)
    for (int64_t j = 0; j < r; ++j) o.f32()[i * r + j] = B.f32()[i * B.dim(1) + j * n_experts + e];
  return o;
}

// The reference for a target_parameters expert adapter of the tiny model's layer 0: A [E·r, in] (expert-major),
// B [out, E·r] (rank-major), merged per expert into gate/up (gate_up) or down with scaling s.
inline void merge_experts_param(TinyModel& ref, const Tensor& A, const Tensor& B, int64_t r, double s, bool gate_up) {
  const std::string L = "model.layers.0.";
  for (int64_t e = 0; e < E; ++e) {
    Tensor Ae = A.rows(e * r, (e + 1) * r).clone(), Be = scaled(expert_cols(B, e, E), s);
    if (gate_up) {
      ref.merge_expert(L + "moe.experts.gate_proj", e, Ae, Be.rows(0, IE).clone());
      ref.merge_expert(L + "moe.experts.up_proj", e, Ae, Be.rows(IE, 2 * IE).clone());
    } else {
      ref.merge_expert(L + "moe.experts.down_proj", e, Ae, Be);
    }
  }
}

inline std::vector<ScoreRequest> requests_for(const std::vector<std::optional<std::string>>& loras, uint32_t seed,
                                              int64_t len = 9) {
  std::mt19937 g(seed);
  std::vector<ScoreRequest> out;
  for (size_t i = 0; i < loras.size(); ++i) {
    ScoreRequest r;
    char id[32];
    std::snprintf(id, sizeof id, "r%zu", i);  // (not "r" + to_string: trips a GCC 12 -Wrestrict false positive)
    r.id = id;
    for (int64_t t = 0; t < len + static_cast<int64_t>(i % 3); ++t) r.input_ids.push_back(static_cast<int32_t>(g() % V));
    r.lora = loras[i];
    out.push_back(r);
  }
  return out;
}

using hylora::test_support::max_diff;

}  // namespace lora_test
