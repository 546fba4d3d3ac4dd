// Nemotron-H (NemotronHForCausalLM, models.md §2): config, checkpoint names, the layer stack and its LoRA targets.
// Checkpoints spell the root `backbone.` (hub and HF save_pretrained) or `model.` (in-memory names); both map onto
// the canonical `model.` names. Experts come per expert (`experts.{e}.up_proj.weight`) or fused 3-D
// (`experts.up_proj` [E, I_e, L]). `mtp.*` (multi-token prediction) is not served. lm_head is never tied.
#include <cmath>
#include <filesystem>

#include "io/safetensors.h"
#include "io/weight_source.h"
#include "models/model_factories.h"
#include "models/linear_forward.h"
#include "models/projection_loading.h"
#include "models/shared_layers.h"
#include "models/nemotron_h.h"
#include "ops/elementwise.h"

namespace hylora {

namespace {

using namespace nemotron_h;

std::optional<std::string> canonical_name(const std::string& stored) {
  if (stored.rfind("mtp.", 0) == 0) return std::nullopt;
  if (stored.rfind("backbone.", 0) == 0) return "model." + stored.substr(9);
  return stored;
}

class NemotronHModel : public Model {
 public:
  NemotronHModel(const WeightOrigin& origin, const json& cfg, const std::string& config_path)
      : c_(parse_config(cfg, config_path)) {
    auto source = open_weights(origin, {canonical_name, nullptr});  // every norm plain
    WeightSource& w = *source;
    const int64_t H = c_.hidden_size;
    emb_.module = "model.embeddings";
    emb_.table = w.get("model.embeddings.weight", {c_.vocab_size, H});  // [V, H]
    blocks_.resize(c_.layers.size());
    for (size_t i = 0; i < c_.layers.size(); ++i) load_block(w, i);
    norm_f_ = w.get("model.norm_f.weight", {H});                                  // [H]
    lm_head_ = load_linear(w, "lm_head", c_.vocab_size, H, /*bias=*/false);       // [V, H]
    w.require_all_used("nemotron_h");
    register_lora_targets();
  }

  void for_each_weight(const std::function<void(Tensor&)>& f) override {
    f(emb_.table);
    for (Block& b : blocks_) {
      for (Tensor* t : {&b.norm_w, &b.mamba.conv_w, &b.mamba.conv_b, &b.mamba.A, &b.mamba.D, &b.mamba.dt_bias,
                        &b.mamba.norm_w, &b.moe.score_bias, &b.moe.up.weight, &b.moe.down.weight})
        f(*t);
      for (Linear* x : {&b.mamba.in_proj, &b.mamba.out_proj, &b.attn.qkv, &b.attn.o_proj, &b.mlp.up, &b.mlp.down,
                        &b.moe.gate, &b.moe.fc1_latent, &b.moe.fc2_latent, &b.moe.shared.up, &b.moe.shared.down})
        visit(f, *x);
    }
    f(norm_f_);
    visit(f, lm_head_);
  }
  std::string architecture() const override { return "NemotronHForCausalLM"; }
  int64_t vocab_size() const override { return c_.vocab_size; }
  int64_t hidden_size() const override { return c_.hidden_size; }
  int64_t num_layers() const override { return static_cast<int64_t>(blocks_.size()); }

  std::vector<std::pair<std::string, std::string>> adapter_prefix_aliases() const override {
    return {{"backbone.", "model."}};
  }
  std::vector<std::string> unserved_prefixes() const override { return {"mtp."}; }

  std::vector<LayerCacheSpec> cache_specs() const override {
    std::vector<LayerCacheSpec> specs;
    for (const Block& b : blocks_) {
      if (b.type == BlockType::kMamba)
        specs.push_back(LayerCacheSpec::recurrent({c_.conv_dim(), c_.conv_kernel - 1},
                                                  {c_.mamba_num_heads, c_.mamba_head_dim, c_.ssm_state_size}));
      else if (b.type == BlockType::kAttention)
        specs.push_back(LayerCacheSpec::attention(c_.num_kv_heads, c_.head_dim, c_.head_dim));
      else
        specs.push_back({});
    }
    return specs;
  }

  void forward(const ForwardArgs& a, Tensor& logits) override {
    const int64_t H = c_.hidden_size;
    const auto block = [&](int64_t layer, Tensor& x, Tensor& h, Tensor& y) {
      const Block& b = blocks_[static_cast<size_t>(layer)];
      ops::rms_norm(a.ctx, x, b.norm_w, H, c_.eps, ops::NormKind::kPlain, h);
      switch (b.type) {
        case BlockType::kMamba: mamba_forward(a, c_, b.mamba, layer, h, y); break;
        case BlockType::kAttention: attention_forward(a, c_, b.attn, layer, h, y); break;
        case BlockType::kMlp: mlp_forward(a, b.mlp, h, y); break;
        case BlockType::kMoe: moe_forward(a, c_, b.moe, h, y); break;
      }
      ops::add(a.ctx, y, x);
    };
    const Tensor x = residual_stream(a, emb_, H, static_cast<int64_t>(blocks_.size()), block);
    logits_head(a, x, norm_f_, c_.eps, ops::NormKind::kPlain, lm_head_, logits);
  }

 private:
  void load_block(WeightSource& w, size_t i) {
    const std::string p = "model.layers." + std::to_string(i);
    const std::string mx = p + ".mixer.";
    const int64_t H = c_.hidden_size;
    Block& b = blocks_[i];
    b.type = c_.layers[i];
    b.norm_w = w.get(p + ".norm.weight", {H});
    switch (b.type) {
      case BlockType::kMamba: {
        MambaMixer& m = b.mamba;
        const int64_t I = c_.mamba_inner(), cd = c_.conv_dim(), nh = c_.mamba_num_heads;
        m.in_proj = load_linear(w, mx + "in_proj", I + cd + nh, H, c_.use_bias);
        m.conv_w = w.get(mx + "conv1d.weight", {cd, c_.conv_kernel});  // stored [cd, 1, K]
        if (c_.use_conv_bias) m.conv_b = w.get(mx + "conv1d.bias", {cd});
        Tensor a_log = w.get(mx + "A_log", {nh});
        m.A = Tensor::empty({nh});
        for (int64_t h = 0; h < nh; ++h) m.A.f32()[h] = -std::exp(a_log.f32()[h]);
        m.D = w.get(mx + "D", {nh});
        m.dt_bias = w.get(mx + "dt_bias", {nh});
        m.norm_w = w.get(mx + "norm.weight", {I});
        m.out_proj = load_linear(w, mx + "out_proj", H, I, c_.use_bias);
        break;
      }
      case BlockType::kAttention: {
        AttentionMixer& m = b.attn;
        const int64_t D = c_.head_dim, q = c_.num_heads * D, kv = c_.num_kv_heads * D;
        Tensor wq = w.get(mx + "q_proj.weight", {q, H});
        Tensor wk = w.get(mx + "k_proj.weight", {kv, H});
        Tensor wv = w.get(mx + "v_proj.weight", {kv, H});
        m.qkv.name = mx + "qkv";
        m.qkv.weight = Tensor::empty({q + 2 * kv, H});  // rows [q | k | v]
        std::copy_n(wq.f32(), wq.numel(), m.qkv.weight.f32());
        std::copy_n(wk.f32(), wk.numel(), m.qkv.weight.f32() + q * H);
        std::copy_n(wv.f32(), wv.numel(), m.qkv.weight.f32() + (q + kv) * H);
        m.qkv.slices = {{mx + "q_proj", 0, q}, {mx + "k_proj", q, kv}, {mx + "v_proj", q + kv, kv}};
        m.o_proj = load_linear(w, mx + "o_proj", H, q, false);  // attention_bias is ignored by HF
        break;
      }
      case BlockType::kMlp:
        b.mlp.up = load_linear(w, mx + "up_proj", c_.intermediate_size, H, c_.mlp_bias);
        b.mlp.down = load_linear(w, mx + "down_proj", H, c_.intermediate_size, c_.mlp_bias);
        break;
      case BlockType::kMoe: {
        MoeMixer& m = b.moe;
        const int64_t E = c_.n_routed_experts, Ie = c_.moe_intermediate_size, L = c_.moe_width();
        const int64_t Is = c_.moe_shared_expert_intermediate_size;
        m.gate = load_linear(w, mx + "gate", E, H, false);
        m.gate.full_precision = true;
        m.score_bias = w.get(mx + "gate.e_score_correction_bias", {E});
        if (c_.moe_latent_size > 0) {
          m.fc1_latent = load_linear(w, mx + "fc1_latent_proj", L, H, false);
          m.fc2_latent = load_linear(w, mx + "fc2_latent_proj", H, L, false);
        }
        m.up.name = mx + "experts.up_proj";
        m.up.weight = w.experts(mx + "experts", "up_proj", {"up_proj"}, {E, Ie, L});
        m.up.slices = {{m.up.name, 0, Ie}};
        m.down.name = mx + "experts.down_proj";
        m.down.weight = w.experts(mx + "experts", "down_proj", {"down_proj"}, {E, L, Ie});
        m.down.slices = {{m.down.name, 0, L}};
        m.shared.up = load_linear(w, mx + "shared_experts.up_proj", Is, H, c_.mlp_bias);
        m.shared.down = load_linear(w, mx + "shared_experts.down_proj", H, Is, c_.mlp_bias);
        break;
      }
    }
  }

  // Called once the blocks are final (the table keeps pointers into them).
  void register_lora_targets() {
    for (Block& b : blocks_) {
      switch (b.type) {
        case BlockType::kMamba: add_lora_target(b.mamba.in_proj); add_lora_target(b.mamba.out_proj); break;
        case BlockType::kAttention: add_lora_target(b.attn.qkv); add_lora_target(b.attn.o_proj); break;
        case BlockType::kMlp: add_lora_target(b.mlp.up); add_lora_target(b.mlp.down); break;
        case BlockType::kMoe:
          add_lora_target(b.moe.gate);
          add_lora_target(b.moe.fc1_latent);
          add_lora_target(b.moe.fc2_latent);
          add_lora_target(b.moe.shared.up);
          add_lora_target(b.moe.shared.down);
          add_lora_target(b.moe.up);
          add_lora_target(b.moe.down);
          break;
      }
    }
    add_lora_target(lm_head_);
    set_lora_embedding(emb_);
  }

  Config c_;
  Embedding emb_;             // table [V, H], PEFT module "model.embeddings"
  std::vector<Block> blocks_;
  Tensor norm_f_;             // [H]
  Linear lm_head_;            // [V, H], never tied
};

}  // namespace

std::unique_ptr<Model> make_nemotron_h(const WeightOrigin& origin, const json& config, const std::string& config_path) {
  return std::make_unique<NemotronHModel>(origin, config, config_path);
}

}  // namespace hylora
