// The Qwen3.5 token mixers and MLPs over a packed batch (models.md §1.4-1.8). Projections run once over all rows
// through ops::linear (which applies LoRA); the sequence-local parts (conv, delta rule, attention) loop over spans.
#include <cmath>
#include <cstring>

#include "models/qwen3_5.h"
#include "models/packed_rows.h"
#include "ops/attention.h"
#include "ops/conv1d.h"
#include "ops/elementwise.h"
#include "ops/gated_delta.h"
#include "ops/gated_rms_norm.h"
#include "ops/rope.h"

namespace hylora::qwen3_5 {

namespace {


}  // namespace

Tensor gdn_forward(const Config& c, const GdnMixer& m, const Tensor& h, const ForwardBatch& batch, int64_t layer) {
  const int64_t rows = h.dim(0), C = c.conv_dim(), kd = c.key_dim(), vd = c.value_dim();
  const int64_t Hv = c.num_value_heads;
  Tensor proj = ops::linear(m.in_proj, h, batch);  // [rows, C + vd + 2·Hv] = [qkv | z | b | a]
  Tensor o = Tensor::empty({rows, vd});            // delta-rule output before the gated norm
  const float* pp = proj.f32();
  const int64_t ld = proj.dim(1);
  for (const SeqSpan& s : batch.seqs) {
    if (s.n_tokens == 0) continue;
    const int64_t n = s.n_tokens;
    // conv_state [C, K-1] = last K-1 pre-conv inputs; recurrent [Hv, Dk, Dv] = delta-rule state
    LayerCache& lc = recurrent_cache(s, layer, {C, c.conv_kernel - 1}, {Hv, c.key_head_dim, c.value_head_dim});
    Tensor qkv = ops::causal_conv1d(copy_block(proj, s.row_begin, n, 0, C), m.conv_w, Tensor(), lc.conv_state,
                                    /*silu=*/true);  // [n, C]
    Tensor g = Tensor::empty({n, Hv}), beta = Tensor::empty({n, Hv});
    for (int64_t t = 0; t < n; ++t) {
      const float* row = pp + (s.row_begin + t) * ld + C + vd;  // [b (Hv) | a (Hv)]
      for (int64_t j = 0; j < Hv; ++j) {
        beta.f32()[t * Hv + j] = ops::sigmoid(row[j]);
        g.f32()[t * Hv + j] = m.neg_A.f32()[j] * ops::softplus(row[Hv + j] + m.dt_bias.f32()[j]);
      }
    }
    Tensor os = ops::gated_delta_rule(copy_block(qkv, 0, n, 0, kd), copy_block(qkv, 0, n, kd, kd), copy_block(qkv, 0, n, 2 * kd, vd),
                                      g, beta, lc.recurrent);  // [n, vd]
    put_rows(o, s.row_begin, os);
  }
  // RMSNormGated per value head over Dv: w · norm(o) · silu(z).
  Tensor y = ops::rms_norm_gated(o, copy_block(proj, 0, rows, C, vd), m.norm_w, c.value_head_dim, c.eps,
                                 ops::GateOrder::kGateAfterNorm);
  return ops::linear(m.out_proj, y, batch);
}

Tensor attention_forward(const Config& c, const Rope& rope, const AttentionMixer& m, const Tensor& h,
                         const ForwardBatch& batch, int64_t layer) {
  const int64_t rows = h.dim(0), nH = c.num_heads, nKV = c.num_kv_heads, D = c.head_dim;
  const int64_t qw = nH * D, kvw = nKV * D, qpw = c.output_gate ? 2 * qw : qw;  // qpw = q_proj width
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  Tensor qkv = ops::linear(m.qkv, h, batch);  // [rows, qpw + 2·kvw]
  const int64_t ld = qkv.dim(1);
  // With the output gate q_proj's output is per head [query D | gate D]: split it into q [rows, nH·D] and gate
  // [rows, nH·D]. Without it (Qwen3) q is the first qw columns.
  Tensor q, gate;
  if (c.output_gate) {
    q = Tensor::empty({rows, qw});
    gate = Tensor::empty({rows, qw});
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t hd = 0; hd < nH; ++hd) {
        const float* src = qkv.f32() + r * ld + hd * 2 * D;
        std::memcpy(q.f32() + r * qw + hd * D, src, D * sizeof(float));
        std::memcpy(gate.f32() + r * qw + hd * D, src + D, D * sizeof(float));
      }
  } else {
    q = copy_cols(qkv, 0, qw);
  }
  Tensor k = copy_block(qkv, 0, rows, qpw, kvw);  // [rows, nKV·D]
  ops::rms_norm_groups_inplace(q, m.q_norm, D, c.eps, c.norm);
  ops::rms_norm_groups_inplace(k, m.k_norm, D, c.eps, c.norm);
  // Text-only MRoPE = plain partial rope on the first `rot` dims of each head (models.md §1.6); Qwen3: rot = D.
  Tensor q3 = q.reshape({rows, nH, D}), k3 = k.reshape({rows, nKV, D});
  ops::rope_neox_inplace(q3, batch.positions, rope.inv_freq, rope.rot);
  ops::rope_neox_inplace(k3, batch.positions, rope.inv_freq, rope.rot);

  Tensor o = Tensor::empty({rows, qw});
  for (const SeqSpan& s : batch.seqs) {
    if (s.n_tokens == 0) continue;
    LayerCache& lc = attention_cache(s, layer, kvw);
    for (int64_t t = 0; t < s.n_tokens; ++t) {
      const float* krow = k.f32() + (s.row_begin + t) * kvw;
      const float* vrow = qkv.f32() + (s.row_begin + t) * ld + qpw + kvw;
      lc.k.insert(lc.k.end(), krow, krow + kvw);
      lc.v.insert(lc.v.end(), vrow, vrow + kvw);
    }
    Tensor qs = copy_block(q, s.row_begin, s.n_tokens, 0, qw).reshape({s.n_tokens, nH, D});
    put_rows(o, s.row_begin, ops::causal_attention(qs, lc.k.data(), lc.v.data(), nKV, D, s.past_len, scale));
  }
  if (c.output_gate) {
    float* op = o.f32();
    const float* gp = gate.f32();
    for (int64_t i = 0; i < o.numel(); ++i) op[i] *= ops::sigmoid(gp[i]);
  }
  return ops::linear(m.o_proj, o, batch);
}

Tensor mlp_forward(const Mlp& m, const Tensor& h, const ForwardBatch& batch) {
  return ops::linear(m.down, ops::silu_gate_halves(ops::linear(m.gate_up, h, batch)), batch);
}

Tensor moe_forward(const Config& c, const MoeBlock& m, const Tensor& h, const ForwardBatch& batch) {
  Tensor logits = ops::linear(m.router, h, batch);                                    // [rows, E]
  ops::Routing routing = ops::route_softmax_topk(logits, c.num_experts_per_tok, c.norm_topk_prob);
  Tensor out = ops::moe_experts(h, routing, m.gate_up, m.down, ops::ExpertActivation::kSiluGated, batch);  // [rows, H]
  if (c.shared_expert_intermediate_size == 0) return out;  // Qwen3-MoE
  Tensor shared = mlp_forward(m.shared, h, batch);                                   // [rows, H]
  Tensor sg = ops::linear(m.shared_gate, h, batch);                                  // [rows, 1]
  const int64_t rows = h.dim(0), H = h.dim(1);
  for (int64_t r = 0; r < rows; ++r) {
    const float w = ops::sigmoid(sg.f32()[r]);
    float* o = out.f32() + r * H;
    const float* s = shared.f32() + r * H;
    for (int64_t i = 0; i < H; ++i) o[i] += w * s[i];
  }
  return out;
}

}  // namespace hylora::qwen3_5
