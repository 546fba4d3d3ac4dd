// DeepSeek-V3 / Kimi-K2 shard specs (models.md §3; multi_gpu.md §2.3): MLA by heads (q_b_proj or q_proj, kv_b_proj,
// o_proj) with the latent projections (q_a_proj, kv_a_proj_with_mqa) replicated, so every rank keeps the whole
// compressed-latent cache; dense MLPs and shared experts by intermediate size; experts by expert (ep) and
// intermediate size; routers replicated.
#include "dist/model_shard_specs.h"
#include "models/deepseek_v3_config.h"

namespace hylora::dist {

using namespace spec_parts;

ModelShardSpec deepseek_v3_shard_spec(const json& config, const std::string& where) {
  const deepseek_v3::Config c = deepseek_v3::parse_config(config, where);
  ModelShardSpec s;
  s.architecture = "DeepseekV3ForCausalLM";
  s.where = where;
  const int64_t H = c.hidden_size, V = c.vocab_size, nH = c.num_heads, Ckv = c.kv_lora_rank;
  const int64_t Dr = c.qk_rope_head_dim, Dn = c.qk_nope_head_dim, Dv = c.v_head_dim, Dqk = c.qk_head_dim();
  s.projections.push_back(embedding("model.embed_tokens", V, H));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i);
    const std::string sa = p + ".self_attn.";
    const std::string hf = sa + "heads";
    auto heads = [&](const char* n, int64_t size) { return split(n, hf, "num_attention_heads", nH, size); };
    ProjectionSpec qkv_a;  // [Qa + Ckv + Dr, H] or [nH·Dqk + Ckv + Dr, H]
    qkv_a.name = sa + "fused_qkv_a";
    const SliceSpec kv_a{sa + "kv_a_proj_with_mqa", {whole("latent", Ckv + Dr)}};
    if (c.q_lora_rank > 0) {
      qkv_a.slices = {{sa + "q_a_proj", {whole("q_latent", c.q_lora_rank)}}, kv_a};  // replicated
      qkv_a.in_parts = {whole("in", H)};
      s.projections.push_back(qkv_a);
      s.projections.push_back(column(sa + "q_b_proj", heads("q", Dqk), c.q_lora_rank));
    } else {
      qkv_a.slices = {{sa + "q_proj", {heads("q", Dqk)}}, kv_a};  // q by heads, the latent part whole
      qkv_a.in_parts = {whole("in", H)};
      s.projections.push_back(qkv_a);
    }
    s.projections.push_back(column(sa + "kv_b_proj", heads("kv", Dn + Dv), Ckv));  // per head [k_nope | v]
    s.projections.push_back(row(sa + "o_proj", H, heads("heads", Dv)));
    const std::string mp = p + ".mlp";
    if (!c.is_moe_layer(i)) {
      gated_mlp(s, mp, c.intermediate_size, H, "intermediate_size");
      continue;
    }
    const int64_t E = c.n_routed_experts, Ie = c.moe_intermediate_size;
    s.projections.push_back(replicated(mp + ".gate", E, H));
    const std::string ef = mp + ".experts/intermediate";
    ProjectionSpec gu;  // [E, 2·Ie, H]
    gu.name = mp + ".experts.gate_up_proj";
    gu.slices = {{mp + ".experts.gate_proj", {split("gate", ef, "moe_intermediate_size", Ie, 1)}},
                 {mp + ".experts.up_proj", {split("up", ef, "moe_intermediate_size", Ie, 1)}}};
    gu.in_parts = {whole("in", H)};
    ProjectionSpec down = row(mp + ".experts.down_proj", H, split("intermediate", ef, "moe_intermediate_size", Ie, 1));
    for (ProjectionSpec* e : {&gu, &down}) {
      e->kind = TargetKind::kExperts;
      e->num_experts = E;
      e->experts_dimension = "n_routed_experts";
      s.projections.push_back(*e);
    }
    // The shared experts are one dense MLP, split over all tp ranks whatever --ep is (multi_gpu.md §2.3): with
    // ep > 1 their per-rank width is not the routed experts' (whole per rank), so it has its own per-rank field.
    const bool derived = !config.contains("shared_experts_intermediate_size");
    gated_mlp(s, mp + ".shared_experts", c.shared_experts_intermediate_size, H,
              derived ? "moe_intermediate_size × n_shared_experts" : "shared_experts_intermediate_size",
              "shared_experts_intermediate_size");
  }
  s.projections.push_back(lm_head(V, H, c.tie_word_embeddings ? "model.embed_tokens" : ""));
  return s;
}

}  // namespace hylora::dist
