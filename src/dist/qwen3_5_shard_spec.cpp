// Qwen3.5 (dense, MoE) and Qwen3 / Qwen3-MoE shard specs (models.md §1; multi_gpu.md §2.1): Gated DeltaNet by
// key/value heads (the 4-slice in_proj cut slice by slice, in_proj_qkv by its q, k, v parts; conv channels and
// per-head vectors follow), gated attention by heads (KV heads replicated when fewer than ranks), dense MLPs and
// the shared expert by intermediate size, experts by expert (ep) and intermediate size, routers replicated.
#include "dist/model_shard_specs.h"
#include "models/qwen3_5_config.h"
#include "models/qwen3_config.h"

namespace hylora::dist {

namespace {

using namespace spec_parts;

ModelShardSpec build(const qwen3_5::Config& c, const std::string& where, std::string architecture) {
  ModelShardSpec s;
  s.architecture = std::move(architecture);
  s.where = where;
  const int64_t H = c.hidden_size, V = c.vocab_size;
  s.projections.push_back(embedding("model.embed_tokens", V, H));
  for (size_t i = 0; i < c.layers.size(); ++i) {
    const std::string p = "model.layers." + std::to_string(i);
    if (c.layers[i] == qwen3_5::LayerType::kLinearAttention) {
      const std::string mx = p + ".linear_attn";
      const std::string kf = mx + "/key_heads", vf = mx + "/value_heads";
      const int64_t Hk = c.num_key_heads, Hv = c.num_value_heads, Dk = c.key_head_dim, Dv = c.value_head_dim;
      auto q = [&](const char* n) { return split_or_replicate(n, kf, "linear_num_key_heads", Hk, Dk); };
      auto v = [&](const char* n, int64_t size) { return split(n, vf, "linear_num_value_heads", Hv, size); };
      ProjectionSpec in;  // [C + Hv·Dv + 2·Hv, H]: rows [qkv | z | b | a]
      in.name = mx + ".in_proj";
      in.slices = {{mx + ".in_proj_qkv", {q("q"), q("k"), v("v", Dv)}},
                   {mx + ".in_proj_z", {v("z", Dv)}},
                   {mx + ".in_proj_b", {v("b", 1)}},
                   {mx + ".in_proj_a", {v("a", 1)}}};
      in.in_parts = {whole("in", H)};
      s.projections.push_back(in);
      s.projections.push_back(param(mx + ".conv1d.weight", {q("q"), q("k"), v("v", Dv)}, c.conv_kernel));  // [C, K]
      s.projections.push_back(param(mx + ".A_log", {v("A_log", 1)}));                      // [Hv]
      s.projections.push_back(param(mx + ".dt_bias", {v("dt_bias", 1)}));                  // [Hv]
      s.projections.push_back(param(mx + ".norm.weight", {whole("norm", Dv)}));            // [Dv], shared by heads
      s.projections.push_back(row(mx + ".out_proj", H, v("value", Dv)));
      s.relations.push_back({vf, kf, Hv / Hk});
    } else {
      const std::string mx = p + ".self_attn";
      const std::string hf = mx + "/heads", kvf = mx + "/kv_heads";
      const int64_t D = c.head_dim, nH = c.num_heads, nKV = c.num_kv_heads;
      ProjectionSpec qkv;  // [q_proj (per head [query D | gate D]) | k | v]
      qkv.name = mx + ".qkv";
      qkv.slices = {{mx + ".q_proj", {split("q", hf, "num_attention_heads", nH, (c.output_gate ? 2 : 1) * D)}},
                    {mx + ".k_proj", {split_or_replicate("k", kvf, "num_key_value_heads", nKV, D)}},
                    {mx + ".v_proj", {split_or_replicate("v", kvf, "num_key_value_heads", nKV, D)}}};
      qkv.in_parts = {whole("in", H)};
      s.projections.push_back(qkv);
      s.projections.push_back(row(mx + ".o_proj", H, split("heads", hf, "num_attention_heads", nH, D)));
      s.relations.push_back({hf, kvf, nH / nKV});
    }
    if (!c.moe_at(i)) {
      gated_mlp(s, p + ".mlp", c.intermediate_size, H, "intermediate_size");
      continue;
    }
    const std::string mx = p + ".mlp";
    const int64_t E = c.num_experts, Ie = c.moe_intermediate_size;
    s.projections.push_back(replicated(mx + ".gate", E, H));  // router: every rank selects the same experts
    const std::string ef = mx + ".experts/intermediate";
    ProjectionSpec gu;  // [E, 2·Ie, H]
    gu.name = mx + ".experts.gate_up_proj";
    gu.kind = TargetKind::kExperts;
    gu.num_experts = E;
    gu.experts_dimension = "num_experts";
    gu.slices = {{mx + ".experts.gate_proj", {split("gate", ef, "moe_intermediate_size", Ie, 1)}},
                 {mx + ".experts.up_proj", {split("up", ef, "moe_intermediate_size", Ie, 1)}}};
    gu.in_parts = {whole("in", H)};
    s.projections.push_back(gu);
    ProjectionSpec down = row(mx + ".experts.down_proj", H, split("intermediate", ef, "moe_intermediate_size", Ie, 1));
    down.kind = TargetKind::kExperts;
    down.num_experts = E;
    down.experts_dimension = "num_experts";
    s.projections.push_back(down);
    if (c.shared_expert_intermediate_size > 0) {
      gated_mlp(s, mx + ".shared_expert", c.shared_expert_intermediate_size, H, "shared_expert_intermediate_size");
      s.projections.push_back(replicated(mx + ".shared_expert_gate", 1, H));
    }
  }
  // Tied (models.md §1.9): the head is the table; a checkpoint without lm_head.weight is tied too, which only the
  // weights can tell (the plan is the same either way; only parameter counts differ).
  s.projections.push_back(lm_head(V, H, c.tie_word_embeddings ? "model.embed_tokens" : ""));
  return s;
}

std::string qwen_architecture(const qwen3_5::Config& c) {
  return c.family + (c.moe ? "Moe" : "") + (c.conditional_generation ? "ForConditionalGeneration" : "ForCausalLM");
}

}  // namespace

ModelShardSpec qwen3_5_shard_spec(const json& config, const std::string& where) {
  qwen3_5::Config c = qwen3_5::parse_config(config, where);
  return build(c, where, qwen_architecture(c));
}

ModelShardSpec qwen3_shard_spec(const json& config, const std::string& where) {
  qwen3_5::Config c = qwen3::parse_config(config, where);
  return build(c, where, qwen_architecture(c));
}

}  // namespace hylora::dist
