// The four Nemotron-H mixers over a packed step (docs/models.md §2.3-2.6). Every op runs over all rows of the step;
// conv, SSM scan and attention address each sequence's cache through the step's layout.
#include <cmath>

#include "models/linear_forward.h"
#include "models/nemotron_h.h"
#include "models/shared_layers.h"
#include "models/tp_linear_forward.h"
#include "ops/conv1d.h"
#include "ops/elementwise.h"
#include "ops/gated_rms_norm.h"
#include "ops/moe.h"
#include "ops/ssm_scan.h"

namespace hylora::nemotron_h {

void mamba_forward(const ForwardArgs& a, const Config& c, const MambaMixer& m, int64_t layer, const Tensor& h,
                   Tensor& out) {
  const int64_t T = h.dim(0), I = c.mamba_inner(), cd = c.conv_dim(), nh = c.mamba_num_heads;
  const int64_t gn = c.n_groups * c.ssm_state_size;
  LayerCache& cache = a.caches.at(layer);       // conv [slots, cd, K-1], recurrent [slots, nh, hd, N]
  Tensor zxbcdt = linear(a, m.in_proj, h);      // [T, I + cd + nh] = [z | xBC | dt]
  Tensor xbc = a.tmp({T, cd});                  // after the causal conv + SiLU: [x (I) | B (G·N) | C (G·N)]
  ops::causal_conv1d(a.ctx, zxbcdt.cols(I, cd), m.conv_w, m.conv_b, a.step.layout, cache.conv, /*silu=*/true, xbc);
  // Δ is clamped at time_step_min on every call, decode included (HF clamps only in prefill), so that a decode step
  // equals the prefill HF scores with.
  Tensor y = a.tmp({T, I});  // SSM output before the gated norm
  ops::ssm_scan(a.ctx, xbc.cols(0, I), zxbcdt.cols(I + cd, nh), xbc.cols(I, gn), xbc.cols(I + gn, gn), m.A, m.D,
                m.dt_bias, c.time_step_min, a.step.layout, cache.recurrent, y);
  ops::rms_norm_gated(a.ctx, y, zxbcdt.cols(0, I), m.norm_w, I / c.n_groups, c.eps, ops::GateOrder::kGateBeforeNorm, y);
  linear(a, m.out_proj, y, out);
}

void attention_forward(const ForwardArgs& a, const Config& c, const AttentionMixer& m, int64_t layer, const Tensor& h,
                       Tensor& out) {
  const int64_t T = h.dim(0), nH = c.num_heads, nKV = c.num_kv_heads, D = c.head_dim;
  const int64_t qw = nH * D, kvw = nKV * D;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  Tensor qkv = linear(a, m.qkv, h);  // [T, qw + 2·kvw]; Nemotron-H attention has no rope
  Tensor o = a.tmp({T, qw});
  attend_paged(a, layer, qkv.cols(0, qw), qkv.cols(qw, kvw), qkv.cols(qw + kvw, kvw), nH, scale, o);
  linear(a, m.o_proj, o, out);
}

void mlp_forward(const ForwardArgs& a, const MlpMixer& m, const Tensor& h, Tensor& out) {
  Tensor up = linear(a, m.up, h);  // [T, I]
  ops::relu2_inplace(a.ctx, up);
  linear(a, m.down, up, out);
}

void moe_forward(const ForwardArgs& a, const Config& c, const MoeMixer& m, const Tensor& h, Tensor& out) {
  const int64_t T = h.dim(0), k = c.num_experts_per_tok;
  Tensor logits = linear(a, m.gate, h);  // [T, E]
  Tensor ids = a.tmp({T, k}, DType::I32), weights = a.tmp({T, k});
  ops::route_sigmoid_grouped(a.ctx, logits, m.score_bias, c.n_group, c.topk_group, k, c.norm_topk_prob,
                             c.routed_scaling_factor, ids, weights);
  const bool latent = c.moe_latent_size > 0;
  Tensor hl = latent ? linear(a, m.fc1_latent, h) : h;  // [T, L]
  if (latent) {
    Tensor r = a.tmp({T, hl.dim(1)});
    moe_experts(a, hl, ids, weights, m.up, m.down, ExpertActivation::kRelu2, r);  // [T, L]
    linear(a, m.fc2_latent, r, out);                                               // [T, H]
  } else {
    moe_experts(a, hl, ids, weights, m.up, m.down, ExpertActivation::kRelu2, out);
  }
  Tensor shared = a.tmp({T, h.dim(1)});
  mlp_forward(a, m.shared, h, shared);
  ops::add(a.ctx, shared, out);
  tp_reduce_moe_block(a, out);  // routed (through the linear fc2 when latent) + partial shared: one all-reduce
}

}  // namespace hylora::nemotron_h
