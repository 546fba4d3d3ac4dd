// Nemotron-H shard specs (models.md §2; multi_gpu.md §2.2): Mamba2 by heads and groups, the one-slice in_proj cut
// at its five parts [z | x | B | C | dt] and the conv channels [x | B | C] the same way; attention by heads (KV heads
// replicated when fewer than ranks); relu² MLP and shared experts by intermediate size; experts by expert (ep) and
// intermediate size; router and latent projections replicated.
#include "dist/model_shard_specs.h"
#include "models/nemotron_h_config.h"

namespace hylora::dist {

using namespace spec_parts;

ModelShardSpec nemotron_h_shard_spec(const json& config, const std::string& where) {
  using nemotron_h::BlockType;
  const nemotron_h::Config c = nemotron_h::parse_config(config, where);
  ModelShardSpec s;
  s.architecture = "NemotronHForCausalLM";
  s.where = where;
  const int64_t H = c.hidden_size, V = c.vocab_size;
  s.projections.push_back(embedding("model.embeddings", V, H));
  for (size_t i = 0; i < c.layers.size(); ++i) {
    const std::string mx = "model.layers." + std::to_string(i) + ".mixer";
    switch (c.layers[i]) {
      case BlockType::kMamba: {
        const std::string hf = mx + "/heads", gf = mx + "/groups";
        const int64_t nh = c.mamba_num_heads, hd = c.mamba_head_dim, G = c.n_groups, N = c.ssm_state_size;
        auto heads = [&](const char* n, int64_t size) { return split(n, hf, "mamba_num_heads", nh, size); };
        auto groups = [&](const char* n) {
          // Groups are split, never replicated: the gated RMSNorm normalises over groups of I/G channels, and a
          // group that straddled ranks would need a cross-rank reduction inside the norm.
          PartSpec p = split(n, gf, "n_groups", G, N);
          p.why = "Mamba2's gated RMSNorm groups must not straddle ranks";
          return p;
        };
        ProjectionSpec in;  // [I + conv_dim + nh, H]: rows [z | x | B | C | dt], one LoRA slice
        in.name = mx + ".in_proj";
        in.slices = {{mx + ".in_proj", {heads("z", hd), heads("x", hd), groups("B"), groups("C"), heads("dt", 1)}}};
        in.in_parts = {whole("in", H)};
        s.projections.push_back(in);
        s.projections.push_back(param(mx + ".conv1d.weight", {heads("x", hd), groups("B"), groups("C")}, c.conv_kernel));
        if (c.use_conv_bias)
          s.projections.push_back(param(mx + ".conv1d.bias", {heads("x", hd), groups("B"), groups("C")}));  // [cd]
        for (const char* v : {".A_log", ".D", ".dt_bias"}) s.projections.push_back(param(mx + v, {heads("head", 1)}));
        PartSpec norm = heads("norm", hd);  // [I]: G groups of I/G channels, whole groups per rank (see above)
        s.projections.push_back(param(mx + ".norm.weight", {norm}));
        s.projections.push_back(row(mx + ".out_proj", H, heads("heads", hd)));
        s.relations.push_back({hf, gf, nh / G});
        break;
      }
      case BlockType::kAttention: {
        const std::string hf = mx + "/heads", kvf = mx + "/kv_heads";
        const int64_t D = c.head_dim, nH = c.num_heads, nKV = c.num_kv_heads;
        ProjectionSpec qkv;  // [q | k | v]
        qkv.name = mx + ".qkv";
        qkv.slices = {{mx + ".q_proj", {split("q", hf, "num_attention_heads", nH, D)}},
                      {mx + ".k_proj", {split_or_replicate("k", kvf, "num_key_value_heads", nKV, D)}},
                      {mx + ".v_proj", {split_or_replicate("v", kvf, "num_key_value_heads", nKV, D)}}};
        qkv.in_parts = {whole("in", H)};
        s.projections.push_back(qkv);
        s.projections.push_back(row(mx + ".o_proj", H, split("heads", hf, "num_attention_heads", nH, D)));
        s.relations.push_back({hf, kvf, nH / nKV});
        break;
      }
      case BlockType::kMlp: {
        const std::string f = mx + "/intermediate";
        const int64_t I = c.intermediate_size;
        s.projections.push_back(column(mx + ".up_proj", split("up", f, "intermediate_size", I, 1), H));
        s.projections.push_back(row(mx + ".down_proj", H, split("intermediate", f, "intermediate_size", I, 1)));
        break;
      }
      case BlockType::kMoe: {
        const int64_t E = c.n_routed_experts, Ie = c.moe_intermediate_size, L = c.moe_width();
        const int64_t Is = c.moe_shared_expert_intermediate_size;
        s.projections.push_back(replicated(mx + ".gate", E, H));
        if (c.moe_latent_size > 0) {
          // Replicated: fc2 is linear, so it is applied to each rank's partial routed sum and the block's one
          // all-reduce adds the results (multi_gpu.md §2.2).
          s.projections.push_back(replicated(mx + ".fc1_latent_proj", L, H));
          s.projections.push_back(replicated(mx + ".fc2_latent_proj", H, L));
        }
        const std::string sf = mx + ".shared_experts/intermediate";
        const char* sd = "moe_shared_expert_intermediate_size";
        s.projections.push_back(column(mx + ".shared_experts.up_proj", split("up", sf, sd, Is, 1), H));
        s.projections.push_back(row(mx + ".shared_experts.down_proj", H, split("intermediate", sf, sd, Is, 1)));
        const std::string ef = mx + ".experts/intermediate";
        ProjectionSpec up = column(mx + ".experts.up_proj", split("up", ef, "moe_intermediate_size", Ie, 1), L);
        ProjectionSpec down = row(mx + ".experts.down_proj", L, split("intermediate", ef, "moe_intermediate_size", Ie, 1));
        for (ProjectionSpec* e : {&up, &down}) {
          e->kind = TargetKind::kExperts;
          e->num_experts = E;
          e->experts_dimension = "n_routed_experts";
          s.projections.push_back(*e);
        }
        break;
      }
    }
  }
  s.projections.push_back(lm_head(V, H));
  return s;
}

}  // namespace hylora::dist
