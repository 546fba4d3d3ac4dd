// The four Nemotron-H mixers over a packed batch (models.md §2.3-2.6). Projections run once over all rows through
// ops::linear (which applies LoRA); the sequence-local parts (conv, SSM scan, attention) loop over the spans.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "models/nemotron_h.h"
#include "models/packed_rows.h"
#include "ops/attention.h"
#include "ops/conv1d.h"
#include "ops/elementwise.h"
#include "ops/gated_rms_norm.h"
#include "ops/ssm_scan.h"

namespace hylora::nemotron_h {

namespace {

}  // namespace

Tensor mamba_forward(const Config& c, const MambaMixer& m, const Tensor& h, const ForwardBatch& batch, int64_t layer) {
  const int64_t rows = h.dim(0), I = c.mamba_inner(), cd = c.conv_dim(), nh = c.mamba_num_heads;
  const int64_t gn = c.n_groups * c.ssm_state_size;
  Tensor zxbcdt = ops::linear(m.in_proj, h, batch);  // [rows, I + cd + nh] = [z | xBC | dt]
  Tensor y = Tensor::empty({rows, I});               // SSM output before the gated norm
  for (const SeqSpan& s : batch.seqs) {
    if (s.n_tokens == 0) continue;
    // conv_state [cd, K-1] = last K-1 pre-conv inputs; recurrent [nh, hd, N] = SSM state
    LayerCache& lc = recurrent_cache(s, layer, {cd, c.conv_kernel - 1}, {nh, c.mamba_head_dim, c.ssm_state_size});
    Tensor xbc = ops::causal_conv1d(copy_block(zxbcdt, s.row_begin, s.n_tokens, I, cd), m.conv_w, m.conv_b,
                                    lc.conv_state, /*silu=*/true);  // [n, cd]
    // Δ is clamped at time_step_min on every call, decode included (HF clamps only in prefill), so that a decode
    // step equals the prefill HF scores with.
    Tensor ys = ops::ssm_scan(copy_block(xbc, 0, s.n_tokens, 0, I), copy_block(zxbcdt, s.row_begin, s.n_tokens, I + cd, nh),
                              copy_block(xbc, 0, s.n_tokens, I, gn), copy_block(xbc, 0, s.n_tokens, I + gn, gn), m.A, m.D,
                              m.dt_bias, c.time_step_min, lc.recurrent);
    put_rows(y, s.row_begin, ys);
  }
  Tensor normed = ops::rms_norm_gated(y, copy_block(zxbcdt, 0, rows, 0, I), m.norm_w, I / c.n_groups, c.eps,
                                      ops::GateOrder::kGateBeforeNorm);
  return ops::linear(m.out_proj, normed, batch);
}

Tensor attention_forward(const Config& c, const AttentionMixer& m, const Tensor& h, const ForwardBatch& batch,
                         int64_t layer) {
  const int64_t rows = h.dim(0), nH = c.num_heads, nKV = c.num_kv_heads, D = c.head_dim;
  const int64_t qw = nH * D, kvw = nKV * D;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  Tensor qkv = ops::linear(m.qkv, h, batch);  // [rows, qw + 2·kvw]
  Tensor o = Tensor::empty({rows, qw});
  for (const SeqSpan& s : batch.seqs) {
    if (s.n_tokens == 0) continue;
    LayerCache& lc = attention_cache(s, layer, kvw);
    for (int64_t t = 0; t < s.n_tokens; ++t) {
      const float* row = qkv.f32() + (s.row_begin + t) * qkv.dim(1);
      lc.k.insert(lc.k.end(), row + qw, row + qw + kvw);
      lc.v.insert(lc.v.end(), row + qw + kvw, row + qw + 2 * kvw);
    }
    Tensor q = copy_block(qkv, s.row_begin, s.n_tokens, 0, qw).reshape({s.n_tokens, nH, D});
    put_rows(o, s.row_begin, ops::causal_attention(q, lc.k.data(), lc.v.data(), nKV, D, s.past_len, scale));
  }
  return ops::linear(m.o_proj, o, batch);
}

Tensor mlp_forward(const MlpMixer& m, const Tensor& h, const ForwardBatch& batch) {
  Tensor a = ops::linear(m.up, h, batch);  // [rows, I]
  float* p = a.f32();
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float r = std::max(p[i], 0.0f);
    p[i] = r * r;  // relu²
  }
  return ops::linear(m.down, a, batch);
}

Tensor moe_forward(const Config& c, const MoeMixer& m, const Tensor& h, const ForwardBatch& batch) {
  Tensor logits = ops::linear(m.gate, h, batch);  // [rows, E]
  ops::Routing routing = ops::route_sigmoid_grouped(logits, m.score_bias, c.n_group, c.topk_group,
                                                    c.num_experts_per_tok, c.norm_topk_prob,
                                                    c.routed_scaling_factor);
  const bool latent = c.moe_latent_size > 0;
  Tensor hl = latent ? ops::linear(m.fc1_latent, h, batch) : h;  // [rows, L]
  Tensor r = ops::moe_experts(hl, routing, m.up, m.down, ops::ExpertActivation::kRelu2, batch);  // [rows, L]
  if (latent) r = ops::linear(m.fc2_latent, r, batch);  // [rows, H]
  ops::add_inplace(r, mlp_forward(m.shared, h, batch));
  return r;
}

}  // namespace hylora::nemotron_h
