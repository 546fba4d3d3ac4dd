#pragma once
// DeepSeek-V3 / Kimi-K2 layer stack (DeepseekV3ForCausalLM): pre-norm decoder layers of multi-head latent attention
// (MLA) and a dense gated-silu MLP (layers < first_k_dense_replace) or a grouped-sigmoid MoE with shared experts.
// Shapes use the names of deepseek_v3_config.h: H hidden, nH heads, Qa = q_lora_rank (or nH·Dqk without it),
// Ckv = kv_lora_rank, Dn/Dr/Dv = qk_nope/qk_rope/v head dims, Dqk = Dn + Dr, I/Ie/Is = dense/expert/shared width.
#include <vector>

#include "models/deepseek_v3_config.h"
#include "models/model.h"

namespace hylora::deepseek_v3 {

struct Attention {
  // Both projections read the normed hidden state: fused, replicated (not split across heads) on a GPU.
  Linear fused_qkv_a;  // [Qa + Ckv + Dr, H]: rows [q_a_proj (or q_proj) | kv_a_proj_with_mqa]; 2 LoRA slices
  Tensor q_a_norm;     // [Qa] q_a_layernorm (q_lora_rank only)
  Linear q_b_proj;     // [nH·Dqk, Qa] (q_lora_rank only; weight undefined otherwise)
  Tensor kv_a_norm;    // [Ckv] kv_a_layernorm
  Linear kv_b_proj;    // [nH·(Dn + Dv), Ckv]: per head [k_nope | v]
  Linear o_proj;       // [H, nH·Dv]
};

struct GatedMlp {
  Linear gate_up;  // [2W, H]: rows [gate_proj | up_proj]; LoRA slices gate_proj, up_proj
  Linear down;     // [H, W]
};

struct Moe {
  Linear gate;          // [E, H] router, run in fp32; LoRA slice `mlp.gate`
  Tensor score_bias;    // [E] e_score_correction_bias (expert selection only)
  ExpertLinear gate_up; // [E, 2Ie, H]: per expert rows [gate | up]
  ExpertLinear down;    // [E, H, Ie]
  GatedMlp shared;      // gate_up [2Is, H], down [H, Is], Is = Config::shared_experts_intermediate_size
};

struct Layer {
  Tensor input_norm;  // [H]
  Tensor post_norm;   // [H]
  Attention attn;
  bool moe = false;
  GatedMlp mlp;       // dense layers
  Moe experts;        // MoE layers
};

// Precomputed once per model: the rotary tables and the softmax scale.
struct AttentionConsts {
  RopeTables rope;
  float scale = 1.0f;
};

// Each writes the block output [T, H] for the normed input h [T, H] of the whole step into `out`. MLA stores each
// token's compressed latent and rope key in layer `layer`'s paged latent cache and attends in the weight-absorbed
// form (ops/mla.h).
void mla_forward(const ForwardArgs& a, const Config& c, const AttentionConsts& k, const Attention& at, int64_t layer,
                 const Tensor& h, Tensor& out);
void gated_mlp_forward(const ForwardArgs& a, const GatedMlp& m, const Tensor& h, Tensor& out);
void moe_forward(const ForwardArgs& a, const Config& c, const Moe& m, const Tensor& h, Tensor& out);

}  // namespace hylora::deepseek_v3
