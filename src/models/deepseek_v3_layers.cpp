// DeepSeek-V3 blocks over a packed step (hf:models/deepseek_v3/modeling_deepseek_v3.py): MLA over the paged latent
// cache in the weight-absorbed form, the dense gated MLP, and the grouped-sigmoid MoE with shared experts.

#include "models/deepseek_v3.h"
#include "models/linear_forward.h"
#include "models/shared_layers.h"
#include "models/tp_linear_forward.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/mla.h"
#include "ops/moe.h"
#include "ops/rope.h"
#include "ops/rope_interleave.h"

namespace hylora::deepseek_v3 {

namespace {

// HF builds q_a_layernorm / kv_a_layernorm as DeepseekV3RMSNorm(dim) with the class default eps, NOT rms_norm_eps.
constexpr float kLatentNormEps = 1e-6f;

void apply_rope(const ForwardArgs& a, const Config& c, const AttentionConsts& k, Tensor& x, int64_t head_dim,
                int64_t offset) {
  const Tensor& pos = a.step.layout.positions;
  if (c.rope_interleave)
    ops::rope_interleaved(a.ctx, x, head_dim, pos, k.rope.inv_freq, c.qk_rope_head_dim, offset,
                          k.rope.attention_scaling);
  else
    ops::rope_neox(a.ctx, x, head_dim, pos, k.rope.inv_freq, c.qk_rope_head_dim, offset, k.rope.attention_scaling);
}

// The kv_b_proj weight each row attends with: the base weight (index 0) for base rows, else W + B·A (+ a
// modules_to_save delta) of the row's slot, one per segment (index g + 1; a slot whose adapter leaves kv_b_proj alone
// has zero B and gets W back). Built with ops from the host copy of the segments' slots, so it runs on any device.
// kvb_of_row [T] int32.
std::vector<Tensor> kv_b_weights(const ForwardArgs& a, const Linear& kv_b, Tensor& kvb_of_row) {
  std::vector<Tensor> kvb{kv_b.weight};
  const ops::LoraSegments& seg = a.step.lora;
  ops::segment_index(a.ctx, seg, kvb_of_row);
  if (!a.lora_active() || kv_b.lora_id < 0) {
    // segment_index points adapter rows past the base weight: give every segment the base weight.
    for (int64_t g = 0; g < seg.num_segments; ++g) kvb.push_back(kv_b.weight);
    return kvb;
  }
  const LoraTargetWeights& tw = a.lora->linears.at(kv_b.lora_id);
  const ops::LoraSliceBuffers& sl = tw.slices.at(0);  // kv_b_proj is one slice over all its rows
  const int64_t out = kv_b.out_features(), in = kv_b.in_features(), r = a.lora->max_rank;
  for (int64_t g = 0; g < seg.num_segments; ++g) {
    const int32_t slot = seg.group_host.at(g);
    const Tensor* delta = slot < static_cast<int32_t>(tw.dense_delta.size()) && tw.dense_delta[slot][0].defined()
                              ? &tw.dense_delta[slot][0]
                              : nullptr;
    Tensor w = a.tmp({out, in});
    ops::copy(a.ctx, kv_b.weight, w);
    Tensor A = sl.A.rows(slot, slot + 1).reshape({r, in});   // [max_r, Ckv]
    Tensor B = sl.B.rows(slot, slot + 1).reshape({out, r});  // [out, max_r]
    ops::matmul_nn(a.ctx, B, A, w, /*accumulate=*/true);
    if (delta) ops::add(a.ctx, *delta, w);
    kvb.push_back(w);
  }
  return kvb;
}

}  // namespace

void mla_forward(const ForwardArgs& a, const Config& c, const AttentionConsts& k, const Attention& at, int64_t layer,
                 const Tensor& h, Tensor& out) {
  const int64_t T = h.dim(0), nH = c.num_heads, Dn = c.qk_nope_head_dim, Dr = c.qk_rope_head_dim;
  const int64_t Dv = c.v_head_dim, Dqk = c.qk_head_dim(), Ckv = c.kv_lora_rank;
  const int64_t Qa = c.q_lora_rank > 0 ? c.q_lora_rank : c.q_width();
  Tensor qkv_a = linear(a, at.fused_qkv_a, h);  // [T, Qa + Ckv + Dr]

  Tensor q;  // [T, nH·Dqk], per head [q_nope | q_rope]
  if (c.q_lora_rank > 0) {
    Tensor qa = a.tmp({T, Qa});
    ops::rms_norm(a.ctx, qkv_a.cols(0, Qa), at.q_a_norm, Qa, kLatentNormEps, ops::NormKind::kPlain, qa);
    q = linear(a, at.q_b_proj, qa);
  } else {
    q = qkv_a.cols(0, Qa);
  }
  apply_rope(a, c, k, q, Dqk, Dn);
  // The cache entry of each token: [kv_a_layernorm(c_kv) (Ckv) | roped k_rope (Dr)].
  Tensor latent = a.tmp({T, Ckv + Dr});
  Tensor lc = latent.cols(0, Ckv), kr = latent.cols(Ckv, Dr);
  ops::rms_norm(a.ctx, qkv_a.cols(Qa, Ckv), at.kv_a_norm, Ckv, kLatentNormEps, ops::NormKind::kPlain, lc);
  ops::copy(a.ctx, qkv_a.cols(Qa + Ckv, Dr), kr);
  apply_rope(a, c, k, kr, Dr, 0);
  LayerCache& cache = a.caches.at(layer);
  ops::paged_store(a.ctx, latent, a.step.layout, cache.latent);

  Tensor kvb_of_row = a.tmp({T}, DType::I32);
  const std::vector<Tensor> kvb = kv_b_weights(a, at.kv_b_proj, kvb_of_row);
  Tensor o = a.tmp({T, nH * Dv});
  ops::mla_attention(a.ctx, q, cache.latent, a.step.layout, kvb, kvb_of_row, nH, Dn, Dv, k.scale, o);
  linear(a, at.o_proj, o, out);
}

void gated_mlp_forward(const ForwardArgs& a, const GatedMlp& m, const Tensor& h, Tensor& out) {
  Tensor gu = linear(a, m.gate_up, h);  // [T, 2W]
  Tensor act = a.tmp({h.dim(0), gu.dim(1) / 2});
  ops::silu_mul_halves(a.ctx, gu, act);
  linear(a, m.down, act, out);
}

void moe_forward(const ForwardArgs& a, const Config& c, const Moe& m, const Tensor& h, Tensor& out) {
  const int64_t T = h.dim(0), k = c.num_experts_per_tok;
  Tensor logits = linear(a, m.gate, h);  // [T, E], fp32 like HF's router
  Tensor ids = a.tmp({T, k}, DType::I32), weights = a.tmp({T, k});
  ops::route_sigmoid_grouped(a.ctx, logits, m.score_bias, c.n_group, c.topk_group, k, c.norm_topk_prob,
                             c.routed_scaling_factor, ids, weights);
  moe_experts(a, h, ids, weights, m.gate_up, m.down, ExpertActivation::kSiluGated, out);
  Tensor shared = a.tmp({T, h.dim(1)});
  gated_mlp_forward(a, m.shared, h, shared);
  ops::add(a.ctx, shared, out);
  tp_reduce_moe_block(a, out);  // this rank's experts + its partial shared experts: one all-reduce
}

}  // namespace hylora::deepseek_v3
