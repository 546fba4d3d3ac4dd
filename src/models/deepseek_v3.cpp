// DeepSeek-V3 / Kimi-K2 (DeepseekV3ForCausalLM; model_type deepseek_v3, kimi_k2): checkpoint names, the layer stack
// and its LoRA targets. Experts come per expert (`mlp.experts.{e}.{gate,up,down}_proj.weight`, hub and
// save_pretrained format) or fused 3-D (`mlp.experts.gate_up_proj` [E, 2Ie, H], `mlp.experts.down_proj` [E, H, Ie],
// the in-memory format). Multi-token-prediction layers stored after the last layer (`model.layers.61.*` in the
// hub checkpoint, `num_nextn_predict_layers`) are not served. lm_head is the embedding when tie_word_embeddings.
#include <filesystem>
#include <regex>

#include "io/safetensors.h"
#include "io/weight_loader.h"
#include "io/weight_source.h"
#include "models/deepseek_v3.h"
#include "models/linear_forward.h"
#include "models/projection_loading.h"
#include "models/shared_layers.h"
#include "models/model_factories.h"
#include "ops/elementwise.h"

namespace hylora {

namespace {

using namespace deepseek_v3;

// Stored -> canonical name; nullopt for the MTP layers (index >= num_hidden_layers) and rotary buffers that old
// exports carry.
WeightLoader::Rename make_rename(int64_t num_layers) {
  return [num_layers](const std::string& stored) -> std::optional<std::string> {
    static const std::regex layer_re(R"(^model\.layers\.(\d+)\.)");
    std::smatch m;
    if (std::regex_search(stored, m, layer_re) && std::stoll(m[1].str()) >= num_layers) return std::nullopt;
    if (stored.find("rotary_emb.inv_freq") != std::string::npos) return std::nullopt;
    return stored;
  };
}

GatedMlp load_gated_mlp(WeightSource& w, const std::string& p, int64_t width, int64_t H) {
  GatedMlp m;
  m.gate_up = load_fused(w, p + ".gate_up", {{p + ".gate_proj", width, false}, {p + ".up_proj", width, false}}, H);
  m.down = load_linear(w, p + ".down_proj", H, width, false);
  return m;
}

class DeepseekV3Model : public Model {
 public:
  DeepseekV3Model(const WeightOrigin& origin, const json& cfg, const std::string& config_path)
      : c_(parse_config(cfg, config_path)) {
    consts_.rope = rope_tables(c_.rope, c_.qk_rope_head_dim);
    consts_.scale = static_cast<float>(softmax_scale(c_));
    auto source = open_weights(origin, {make_rename(c_.num_layers), nullptr});  // every norm plain
    WeightSource& w = *source;
    const int64_t H = c_.hidden_size, V = c_.vocab_size;
    emb_.module = "model.embed_tokens";
    emb_.table = w.get("model.embed_tokens.weight", {V, H});  // [V, H]
    layers_.resize(c_.num_layers);
    for (int64_t i = 0; i < c_.num_layers; ++i) load_layer(w, i);
    norm_ = w.get("model.norm.weight", {H});  // [H]
    lm_head_.name = "lm_head";
    lm_head_.slices = {{"lm_head", 0, V}};
    if (c_.tie_word_embeddings) {
      // HF ties lm_head to the embedding after loading: a stored lm_head.weight is overwritten, so ignore it.
      w.get_optional("lm_head.weight", {V, H});
      lm_head_.weight = emb_.table;  // [V, H], shared storage
    } else {
      lm_head_.weight = w.get("lm_head.weight", {V, H});  // [V, H]
    }
    w.require_all_used("deepseek_v3");
    register_lora_targets();
  }

  void for_each_weight(const std::function<void(Tensor&)>& f) override {
    f(emb_.table);
    for (Layer& l : layers_) {
      for (Tensor* t : {&l.input_norm, &l.post_norm, &l.attn.q_a_norm, &l.attn.kv_a_norm, &l.experts.score_bias,
                        &l.experts.gate_up.weight, &l.experts.down.weight})
        f(*t);
      for (Linear* x : {&l.attn.fused_qkv_a, &l.attn.q_b_proj, &l.attn.kv_b_proj, &l.attn.o_proj, &l.mlp.gate_up,
                        &l.mlp.down, &l.experts.gate, &l.experts.shared.gate_up, &l.experts.shared.down})
        visit(f, *x);
    }
    f(norm_);
    visit(f, lm_head_);
  }
  std::string architecture() const override { return "DeepseekV3ForCausalLM"; }
  int64_t vocab_size() const override { return c_.vocab_size; }
  int64_t hidden_size() const override { return c_.hidden_size; }
  int64_t num_layers() const override { return c_.num_layers; }

  std::vector<std::string> unserved_prefixes() const override {
    std::vector<std::string> out;
    for (int64_t i = 0; i < c_.num_nextn_predict_layers; ++i)
      out.push_back("model.layers." + std::to_string(c_.num_layers + i) + ".");
    return out;
  }

  std::vector<LayerCacheSpec> cache_specs() const override {
    // MLA caches the compressed latent (kv_a_layernorm'd, Ckv) and the roped shared key (Dr) per token.
    return std::vector<LayerCacheSpec>(c_.num_layers, LayerCacheSpec::latent(c_.kv_lora_rank + c_.qk_rope_head_dim));
  }

  void forward(const ForwardArgs& a, Tensor& logits) override {
    const int64_t H = c_.hidden_size;
    const auto decoder_layer = [&](int64_t i, Tensor& x, Tensor& h, Tensor& y) {
      const Layer& l = layers_[i];
      ops::rms_norm(a.ctx, x, l.input_norm, H, c_.eps, ops::NormKind::kPlain, h);
      mla_forward(a, c_, consts_, l.attn, i, h, y);
      ops::add(a.ctx, y, x);
      ops::rms_norm(a.ctx, x, l.post_norm, H, c_.eps, ops::NormKind::kPlain, h);
      if (l.moe)
        moe_forward(a, c_, l.experts, h, y);
      else
        gated_mlp_forward(a, l.mlp, h, y);
      ops::add(a.ctx, y, x);
    };
    const Tensor x = residual_stream(a, emb_, H, c_.num_layers, decoder_layer);
    logits_head(a, x, norm_, c_.eps, ops::NormKind::kPlain, lm_head_, logits);
  }

 private:
  void load_layer(WeightSource& w, int64_t i) {
    const std::string p = "model.layers." + std::to_string(i);
    const std::string sa = p + ".self_attn.";
    const int64_t H = c_.hidden_size, nH = c_.num_heads, Ckv = c_.kv_lora_rank, Dr = c_.qk_rope_head_dim;
    const bool bias = c_.attention_bias;
    Layer& l = layers_[i];
    l.input_norm = w.get(p + ".input_layernorm.weight", {H});
    l.post_norm = w.get(p + ".post_attention_layernorm.weight", {H});

    Attention& a = l.attn;
    const FusedPart kv_a{sa + "kv_a_proj_with_mqa", Ckv + Dr, bias};
    if (c_.q_lora_rank > 0) {
      const int64_t Qa = c_.q_lora_rank;
      a.fused_qkv_a = load_fused(w, sa + "fused_qkv_a", {{sa + "q_a_proj", Qa, bias}, kv_a}, H);
      a.q_a_norm = w.get(sa + "q_a_layernorm.weight", {Qa});
      a.q_b_proj = load_linear(w, sa + "q_b_proj", c_.q_width(), Qa, false);
    } else {
      a.fused_qkv_a = load_fused(w, sa + "fused_qkv_a", {{sa + "q_proj", c_.q_width(), false}, kv_a}, H);
    }
    a.kv_a_norm = w.get(sa + "kv_a_layernorm.weight", {Ckv});
    a.kv_b_proj = load_linear(w, sa + "kv_b_proj", nH * (c_.qk_nope_head_dim + c_.v_head_dim), Ckv, false);
    a.kv_b_proj.full_precision = true;  // read by mla_attention, not a GEMM
    a.o_proj = load_linear(w, sa + "o_proj", H, nH * c_.v_head_dim, bias);

    const std::string mp = p + ".mlp";
    l.moe = c_.is_moe_layer(i);
    if (!l.moe) {
      l.mlp = load_gated_mlp(w, mp, c_.intermediate_size, H);
      return;
    }
    Moe& m = l.experts;
    const int64_t E = c_.n_routed_experts, Ie = c_.moe_intermediate_size;
    m.gate = load_linear(w, mp + ".gate", E, H, false);
    m.gate.full_precision = true;
    m.score_bias = w.get(mp + ".gate.e_score_correction_bias", {E});
    const std::string ex = mp + ".experts";
    m.gate_up.name = ex + ".gate_up_proj";
    m.gate_up.weight = w.experts(ex, "gate_up_proj", {"gate_proj", "up_proj"}, {E, 2 * Ie, H});
    m.gate_up.slices = {{ex + ".gate_proj", 0, Ie}, {ex + ".up_proj", Ie, Ie}};
    m.down.name = ex + ".down_proj";
    m.down.weight = w.experts(ex, "down_proj", {"down_proj"}, {E, H, Ie});
    m.down.slices = {{ex + ".down_proj", 0, H}};
    m.shared = load_gated_mlp(w, mp + ".shared_experts", c_.shared_experts_intermediate_size, H);
  }

  // Called once the layers are final (the table keeps pointers into them).
  void register_lora_targets() {
    for (Layer& l : layers_) {
      add_lora_target(l.attn.fused_qkv_a);
      add_lora_target(l.attn.q_b_proj);
      add_lora_target(l.attn.kv_b_proj);
      add_lora_target(l.attn.o_proj);
      if (l.moe) {
        add_lora_target(l.experts.gate);
        add_lora_target(l.experts.shared.gate_up);
        add_lora_target(l.experts.shared.down);
        add_lora_target(l.experts.gate_up);
        add_lora_target(l.experts.down);
      } else {
        add_lora_target(l.mlp.gate_up);
        add_lora_target(l.mlp.down);
      }
    }
    add_lora_target(lm_head_);
    set_lora_embedding(emb_);
  }

  Config c_;
  AttentionConsts consts_;
  Embedding emb_;              // table [V, H], PEFT module "model.embed_tokens"
  std::vector<Layer> layers_;
  Tensor norm_;                // [H]
  Linear lm_head_;             // [V, H] (the embedding table when tied)
};

}  // namespace

std::unique_ptr<Model> make_deepseek_v3(const WeightOrigin& origin, const json& config, const std::string& config_path) {
  return std::make_unique<DeepseekV3Model>(origin, config, config_path);
}

}  // namespace hylora
