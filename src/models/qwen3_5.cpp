// Qwen3.5 dense and MoE (Qwen3_5[Moe]ForCausalLM / …ForConditionalGeneration, models.md §1): config, checkpoint
// names, the layer stack and its LoRA targets. ConditionalGeneration checkpoints store the text model under
// `model.language_model.` (mapped onto the canonical `model.`), the vision tower under `model.visual.` and the
// multi-token-prediction head under `mtp.` (neither is served). MoE experts come fused (`mlp.experts.gate_up_proj`
// [E, 2·Ie, H], `mlp.experts.down_proj` [E, H, Ie]) or per expert (`mlp.experts.{e}.{gate,up,down}_proj.weight`).
// Plain Qwen3 / Qwen3-MoE (Qwen3[Moe]ForCausalLM) runs on the same class with the config of qwen3_config.h.
#include <cmath>
#include <filesystem>

#include "io/safetensors.h"
#include "io/weight_source.h"
#include "models/model_factories.h"
#include "models/linear_forward.h"
#include "models/projection_loading.h"
#include "models/qwen3_5.h"
#include "models/qwen3_config.h"
#include "models/shared_layers.h"
#include "ops/elementwise.h"
#include "ops/rope.h"

namespace hylora {

namespace {

using namespace qwen3_5;

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

std::optional<std::string> canonical_name(const std::string& stored) {
  if (starts_with(stored, "mtp.") || starts_with(stored, "model.visual.")) return std::nullopt;
  if (starts_with(stored, "model.language_model.")) return "model." + stored.substr(21);
  return stored;
}

Mlp load_mlp(WeightSource& w, const std::string& p, int64_t I, int64_t H) {
  Mlp m;
  m.gate_up = load_fused(w, p + ".gate_up", {{p + ".gate_proj", I}, {p + ".up_proj", I}}, H);
  m.down = load_linear(w, p + ".down_proj", H, I, false);
  return m;
}

class Qwen35Model : public Model {
 public:
  Qwen35Model(const WeightOrigin& origin, Config c) : c_(std::move(c)) {
    // Qwen3.5's decoder norms are (1 + w); the gated norm of the GDN mixer is plain. Qwen3 (kPlain): all plain.
    const bool one_plus = c_.norm == ops::NormKind::kOnePlus;
    auto source = open_weights(origin, {canonical_name, [one_plus](const std::string& name) {
                                          return one_plus && name.find(".linear_attn.norm.") == std::string::npos;
                                        }});
    WeightSource& w = *source;
    const int64_t H = c_.hidden_size, V = c_.vocab_size;
    emb_.module = "model.embed_tokens";
    emb_.table = w.get("model.embed_tokens.weight", {V, H});  // [V, H]
    layers_.resize(c_.layers.size());
    for (size_t i = 0; i < c_.layers.size(); ++i) load_layer(w, i);
    norm_ = w.get("model.norm.weight", {H});  // [H]
    rope_.rot = c_.rotary_dim;
    rope_.inv_freq = ops::rope_inv_freq(c_.rotary_dim, c_.rope_theta);
    // §1.9: tied, or no lm_head.weight stored -> the head is the embedding table.
    const bool tied = c_.tie_word_embeddings || !w.has("lm_head.weight");
    lm_head_.name = "lm_head";
    lm_head_.slices = {{"lm_head", 0, V}};
    if (tied) {
      w.get_optional("lm_head.weight", {V, H});  // HF ties over a stored copy: read, then ignored
      lm_head_.weight = emb_.table;              // [V, H], shared storage
    } else {
      lm_head_.weight = w.get("lm_head.weight", {V, H});  // [V, H]
    }
    w.require_all_used(architecture());
    register_lora_targets();
  }

  void for_each_weight(const std::function<void(Tensor&)>& f) override {
    f(emb_.table);
    for (Layer& l : layers_) {
      for (Tensor* t : {&l.input_norm, &l.post_norm, &l.gdn.conv_w, &l.gdn.neg_A, &l.gdn.dt_bias, &l.gdn.norm_w,
                        &l.attn.q_norm, &l.attn.k_norm, &l.moe.gate_up.weight, &l.moe.down.weight})
        f(*t);
      for (Linear* x : {&l.gdn.in_proj, &l.gdn.out_proj, &l.attn.qkv, &l.attn.o_proj, &l.mlp.gate_up, &l.mlp.down,
                        &l.moe.router, &l.moe.shared.gate_up, &l.moe.shared.down, &l.moe.shared_gate})
        visit(f, *x);
    }
    f(norm_);
    visit(f, lm_head_);
  }
  std::string architecture() const override {
    return c_.family + (c_.moe ? "Moe" : "") +
           (c_.conditional_generation ? "ForConditionalGeneration" : "ForCausalLM");
  }
  int64_t vocab_size() const override { return c_.vocab_size; }
  int64_t hidden_size() const override { return c_.hidden_size; }
  int64_t num_layers() const override { return static_cast<int64_t>(layers_.size()); }

  std::vector<std::pair<std::string, std::string>> adapter_prefix_aliases() const override {
    return {{"model.language_model.", "model."}};
  }
  std::vector<std::string> unserved_prefixes() const override { return {"model.visual.", "mtp."}; }

  std::vector<LayerCacheSpec> cache_specs() const override {
    std::vector<LayerCacheSpec> specs;
    for (const Layer& l : layers_) {
      if (l.type == LayerType::kLinearAttention)
        specs.push_back(LayerCacheSpec::recurrent({c_.conv_dim(), c_.conv_kernel - 1},
                                                  {c_.num_value_heads, c_.key_head_dim, c_.value_head_dim}));
      else
        specs.push_back(LayerCacheSpec::attention(c_.num_kv_heads, c_.head_dim, c_.head_dim));
    }
    return specs;
  }

  void forward(const ForwardArgs& a, Tensor& logits) override {
    const int64_t H = c_.hidden_size;
    const auto decoder_layer = [&](int64_t layer, Tensor& x, Tensor& h, Tensor& y) {
      const size_t i = static_cast<size_t>(layer);
      const Layer& l = layers_[i];
      ops::rms_norm(a.ctx, x, l.input_norm, H, c_.eps, c_.norm, h);
      if (l.type == LayerType::kLinearAttention)
        gdn_forward(a, c_, l.gdn, layer, h, y);
      else
        attention_forward(a, c_, rope_, l.attn, layer, h, y);
      ops::add(a.ctx, y, x);
      ops::rms_norm(a.ctx, x, l.post_norm, H, c_.eps, c_.norm, h);
      if (c_.moe_at(i))
        moe_forward(a, c_, l.moe, h, y);
      else
        mlp_forward(a, l.mlp, h, y);
      ops::add(a.ctx, y, x);
    };
    const Tensor x = residual_stream(a, emb_, H, static_cast<int64_t>(layers_.size()), decoder_layer);
    logits_head(a, x, norm_, c_.eps, c_.norm, lm_head_, logits);
  }

 private:
  void load_layer(WeightSource& w, size_t i) {
    const std::string p = "model.layers." + std::to_string(i);
    const int64_t H = c_.hidden_size;
    Layer& l = layers_[i];
    l.type = c_.layers[i];
    l.input_norm = w.get(p + ".input_layernorm.weight", {H});
    l.post_norm = w.get(p + ".post_attention_layernorm.weight", {H});
    if (l.type == LayerType::kLinearAttention) {
      const std::string mx = p + ".linear_attn";
      const int64_t C = c_.conv_dim(), vd = c_.value_dim(), Hv = c_.num_value_heads, Dv = c_.value_head_dim;
      GdnMixer& m = l.gdn;
      m.in_proj = load_fused(w, mx + ".in_proj",
                             {{mx + ".in_proj_qkv", C}, {mx + ".in_proj_z", vd}, {mx + ".in_proj_b", Hv},
                              {mx + ".in_proj_a", Hv}},
                             H);
      m.conv_w = w.get(mx + ".conv1d.weight", {C, c_.conv_kernel});  // stored [C, 1, K]
      Tensor a_log = w.get(mx + ".A_log", {Hv});
      m.neg_A = Tensor::empty({Hv});
      for (int64_t j = 0; j < Hv; ++j) m.neg_A.f32()[j] = -std::exp(a_log.f32()[j]);
      m.dt_bias = w.get(mx + ".dt_bias", {Hv});
      Tensor nw = w.get(mx + ".norm.weight", {Dv});
      m.norm_w = Tensor::empty({vd});
      for (int64_t j = 0; j < Hv; ++j) std::copy_n(nw.f32(), Dv, m.norm_w.f32() + j * Dv);
      m.out_proj = load_linear(w, mx + ".out_proj", H, vd, false);
    } else {
      const std::string mx = p + ".self_attn";
      const int64_t D = c_.head_dim, q = (c_.output_gate ? 2 : 1) * c_.num_heads * D, kv = c_.num_kv_heads * D;
      AttentionMixer& m = l.attn;
      const bool b = c_.attention_bias;
      m.qkv = load_fused(w, mx + ".qkv", {{mx + ".q_proj", q, b}, {mx + ".k_proj", kv, b}, {mx + ".v_proj", kv, b}}, H);
      m.q_norm = w.get(mx + ".q_norm.weight", {D});
      m.k_norm = w.get(mx + ".k_norm.weight", {D});
      m.o_proj = load_linear(w, mx + ".o_proj", H, c_.num_heads * D, c_.attention_bias);
    }
    if (!c_.moe_at(i)) {
      l.mlp = load_mlp(w, p + ".mlp", c_.intermediate_size, H);
      return;
    }
    const std::string mx = p + ".mlp";
    const int64_t E = c_.num_experts, Ie = c_.moe_intermediate_size;
    MoeBlock& m = l.moe;
    m.router = load_linear(w, mx + ".gate", E, H, false);
    m.router.full_precision = true;
    m.gate_up.name = mx + ".experts.gate_up_proj";
    m.gate_up.weight = w.experts(mx + ".experts", "gate_up_proj", {"gate_proj", "up_proj"}, {E, 2 * Ie, H});
    m.gate_up.slices = {{mx + ".experts.gate_proj", 0, Ie}, {mx + ".experts.up_proj", Ie, Ie}};
    m.down.name = mx + ".experts.down_proj";
    m.down.weight = w.experts(mx + ".experts", "down_proj", {"down_proj"}, {E, H, Ie});
    m.down.slices = {{mx + ".experts.down_proj", 0, H}};
    if (c_.shared_expert_intermediate_size == 0) return;  // Qwen3-MoE
    m.shared = load_mlp(w, mx + ".shared_expert", c_.shared_expert_intermediate_size, H);
    m.shared_gate = load_linear(w, mx + ".shared_expert_gate", 1, H, false);
    m.shared_gate.full_precision = true;
  }

  // Called once the layers are final (the table keeps pointers into them).
  void register_lora_targets() {
    for (size_t i = 0; i < layers_.size(); ++i) {
      Layer& l = layers_[i];
      if (l.type == LayerType::kLinearAttention) {
        add_lora_target(l.gdn.in_proj);
        add_lora_target(l.gdn.out_proj);
      } else {
        add_lora_target(l.attn.qkv);
        add_lora_target(l.attn.o_proj);
      }
      if (!c_.moe_at(i)) {
        add_lora_target(l.mlp.gate_up);
        add_lora_target(l.mlp.down);
        continue;
      }
      add_lora_target(l.moe.router);
      add_lora_target(l.moe.shared.gate_up);  // absent without a shared expert: skipped
      add_lora_target(l.moe.shared.down);
      add_lora_target(l.moe.shared_gate);
      add_lora_target(l.moe.gate_up);
      add_lora_target(l.moe.down);
    }
    add_lora_target(lm_head_);
    set_lora_embedding(emb_);
  }

  Config c_;
  Embedding emb_;              // table [V, H], PEFT module "model.embed_tokens"
  std::vector<Layer> layers_;
  Tensor norm_;                // [H] RMSNorm1p (Qwen3: plain)
  Rope rope_;                  // rot = int(D · partial_rotary_factor); Qwen3: D
  Linear lm_head_;             // [V, H]; shares the embedding table when tied
};

}  // namespace

std::unique_ptr<Model> make_qwen3_5(const WeightOrigin& origin, const json& config, const std::string& config_path) {
  return std::make_unique<Qwen35Model>(origin, parse_config(config, config_path));
}

std::unique_ptr<Model> make_qwen3(const WeightOrigin& origin, const json& config, const std::string& config_path) {
  return std::make_unique<Qwen35Model>(origin, qwen3::parse_config(config, config_path));
}

}  // namespace hylora
