// The Qwen3.5 token mixers and MLPs over a packed step (docs/models.md §1.4-1.8). Every op runs over all rows of the
// step at once; the sequence-local parts (conv, delta rule, attention) address each sequence's cache through the
// step's layout.
#include <cmath>

#include "models/linear_forward.h"
#include "models/qwen3_5.h"
#include "models/shared_layers.h"
#include "models/tp_linear_forward.h"
#include "ops/conv1d.h"
#include "ops/elementwise.h"
#include "ops/gated_delta.h"
#include "ops/gated_rms_norm.h"
#include "ops/moe.h"
#include "ops/rope.h"

namespace hylora::qwen3_5 {

void gdn_forward(const ForwardArgs& a, const Config& c, const GdnMixer& m, int64_t layer, const Tensor& h, Tensor& out) {
  const int64_t T = h.dim(0), C = c.conv_dim(), kd = c.key_dim(), vd = c.value_dim(), Hv = c.num_value_heads;
  LayerCache& cache = a.caches.at(layer);  // conv [slots, C, K-1], recurrent [slots, Hv, Dk, Dv]
  Tensor proj = linear(a, m.in_proj, h);   // [T, C + vd + 2·Hv] = [qkv | z | b | a]
  Tensor qkv = a.tmp({T, C});              // after the causal conv + SiLU
  ops::causal_conv1d(a.ctx, proj.cols(0, C), m.conv_w, Tensor(), a.step.layout, cache.conv, /*silu=*/true, qkv);
  // β = sigmoid(b), g = −exp(A_log) · softplus(a + dt_bias), per row and value head.
  Tensor g = a.tmp({T, Hv}), beta = a.tmp({T, Hv});
  ops::gdn_gates(a.ctx, proj.cols(C + vd, Hv), proj.cols(C + vd + Hv, Hv), m.neg_A, m.dt_bias, g, beta);
  Tensor o = a.tmp({T, vd});  // delta-rule output before the gated norm
  ops::gated_delta_rule(a.ctx, qkv.cols(0, kd), qkv.cols(kd, kd), qkv.cols(2 * kd, vd), g, beta, a.step.layout,
                        cache.recurrent, o);
  // RMSNormGated per value head over Dv: w · norm(o) · silu(z).
  ops::rms_norm_gated(a.ctx, o, proj.cols(C, vd), m.norm_w, c.value_head_dim, c.eps, ops::GateOrder::kGateAfterNorm, o);
  linear(a, m.out_proj, o, out);
}

void attention_forward(const ForwardArgs& a, const Config& c, const Rope& rope, const AttentionMixer& m, int64_t layer,
                       const Tensor& h, Tensor& out) {
  const int64_t T = h.dim(0), nH = c.num_heads, nKV = c.num_kv_heads, D = c.head_dim;
  const int64_t qw = nH * D, kvw = nKV * D, qpw = c.output_gate ? 2 * qw : qw;  // qpw = q_proj width
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  Tensor qkv = linear(a, m.qkv, h);  // [T, qpw + 2·kvw]
  // With the output gate q_proj's output is per head [query D | gate D]: split it into q and gate [T, nH·D].
  // Without it (Qwen3) q is the first qw columns, normed in place.
  Tensor q, gate;
  if (c.output_gate) {
    q = a.tmp({T, qw});
    gate = a.tmp({T, qw});
    ops::split_head_halves(a.ctx, qkv.cols(0, qpw), D, q, gate);
  } else {
    q = qkv.cols(0, qw);
  }
  Tensor k = qkv.cols(qpw, kvw), v = qkv.cols(qpw + kvw, kvw);
  ops::rms_norm(a.ctx, q, m.q_norm, D, c.eps, c.norm, q);
  ops::rms_norm(a.ctx, k, m.k_norm, D, c.eps, c.norm, k);
  // Text-only MRoPE = plain partial rope on the first `rot` dims of each head (docs/models.md §1.6); Qwen3: rot = D.
  ops::rope_neox(a.ctx, q, D, a.step.layout.positions, rope.inv_freq, rope.rot);
  ops::rope_neox(a.ctx, k, D, a.step.layout.positions, rope.inv_freq, rope.rot);
  Tensor o = a.tmp({T, qw});
  attend_paged(a, layer, q, k, v, nH, scale, o);
  if (c.output_gate) ops::mul_sigmoid(a.ctx, gate, o);
  linear(a, m.o_proj, o, out);
}

void mlp_forward(const ForwardArgs& a, const Mlp& m, const Tensor& h, Tensor& out) {
  Tensor gu = linear(a, m.gate_up, h);  // [T, 2I]
  Tensor act = a.tmp({h.dim(0), gu.dim(1) / 2});
  ops::silu_mul_halves(a.ctx, gu, act);
  linear(a, m.down, act, out);
}

void moe_forward(const ForwardArgs& a, const Config& c, const MoeBlock& m, const Tensor& h, Tensor& out) {
  const int64_t T = h.dim(0), k = c.num_experts_per_tok;
  Tensor logits = linear(a, m.router, h);  // [T, E]
  Tensor ids = a.tmp({T, k}, DType::I32), weights = a.tmp({T, k});
  ops::route_softmax_topk(a.ctx, logits, k, c.norm_topk_prob, ids, weights);
  moe_experts(a, h, ids, weights, m.gate_up, m.down, ExpertActivation::kSiluGated, out);
  if (c.shared_expert_intermediate_size == 0) return tp_reduce_moe_block(a, out);  // Qwen3-MoE
  Tensor shared = a.tmp({T, h.dim(1)});
  mlp_forward(a, m.shared, h, shared);
  Tensor sg = linear(a, m.shared_gate, h);  // [T, 1] → sigmoid scalar per row
  ops::sigmoid_inplace(a.ctx, sg);
  ops::add_row_scaled(a.ctx, shared, sg, out);  // σ(gate) scales this rank's partial shared expert (linear)
  tp_reduce_moe_block(a, out);
}

}  // namespace hylora::qwen3_5
