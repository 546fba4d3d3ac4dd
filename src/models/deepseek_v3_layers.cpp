// DeepSeek-V3 blocks over a packed batch (hf:models/deepseek_v3/modeling_deepseek_v3.py). Projections run once over
// all rows through ops::linear (which applies LoRA); only the attention itself loops over the sequences.
#include <cstring>

#include "models/deepseek_v3.h"
#include "models/packed_rows.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/rope.h"
#include "ops/rope_interleave.h"

namespace hylora::deepseek_v3 {

namespace {

// HF builds q_a_layernorm / kv_a_layernorm as DeepseekV3RMSNorm(dim) with the class default eps, NOT rms_norm_eps.
constexpr float kLatentNormEps = 1e-6f;

void apply_rope(const Config& c, const AttentionConsts& k, Tensor& x, const std::vector<int64_t>& positions,
                int64_t offset) {
  if (c.rope_interleave)
    ops::rope_interleaved_inplace(x, positions, k.rope.inv_freq, c.qk_rope_head_dim, offset, k.rope.attention_scaling);
  else
    ops::rope_neox_inplace(x, positions, k.rope.inv_freq, c.qk_rope_head_dim, offset, k.rope.attention_scaling);
}

}  // namespace

Tensor mla_forward(const Config& c, const AttentionConsts& k, const Attention& a, const Tensor& h,
                   const ForwardBatch& batch, int64_t layer) {
  const int64_t N = h.dim(0), nH = c.num_heads, Dn = c.qk_nope_head_dim, Dr = c.qk_rope_head_dim;
  const int64_t Dv = c.v_head_dim, Dqk = c.qk_head_dim(), Ckv = c.kv_lora_rank;
  const int64_t Qa = c.q_lora_rank > 0 ? c.q_lora_rank : c.q_width();
  Tensor qkv_a = ops::linear(a.fused_qkv_a, h, batch);  // [N, Qa + Ckv + Dr]

  Tensor q;  // [N, nH·Dqk], per head [q_nope | q_rope]
  if (c.q_lora_rank > 0)
    q = ops::linear(a.q_b_proj, ops::rms_norm(copy_cols(qkv_a, 0, Qa), a.q_a_norm, kLatentNormEps, ops::NormKind::kPlain),
                    batch);
  else
    q = copy_cols(qkv_a, 0, Qa);
  Tensor kv_lat = ops::rms_norm(copy_cols(qkv_a, Qa, Ckv), a.kv_a_norm, kLatentNormEps, ops::NormKind::kPlain);  // [N, Ckv]
  Tensor kv = ops::linear(a.kv_b_proj, kv_lat, batch);  // [N, nH·(Dn + Dv)], per head [k_nope | v]
  Tensor k_rope = copy_cols(qkv_a, Qa + Ckv, Dr);             // [N, Dr], one key rope part shared by all heads

  q = q.reshape({N, nH, Dqk});
  apply_rope(c, k, q, batch.positions, Dn);
  k_rope = k_rope.reshape({N, 1, Dr});
  apply_rope(c, k, k_rope, batch.positions, 0);

  Tensor o = Tensor::empty({N, nH * Dv});
  for (const SeqSpan& s : batch.seqs) {
    if (s.n_tokens == 0) continue;
    LayerCache& lc = attention_cache(s, layer, nH * Dqk);
    // Append per head k = [k_nope | k_rope] [Dqk] and v [Dv].
    lc.k.resize((s.past_len + s.n_tokens) * nH * Dqk);
    lc.v.resize((s.past_len + s.n_tokens) * nH * Dv);
    for (int64_t t = 0; t < s.n_tokens; ++t) {
      const int64_t row = s.row_begin + t;
      const float* kvr = kv.f32() + row * nH * (Dn + Dv);
      const float* kr = k_rope.f32() + row * Dr;
      float* kd = lc.k.data() + (s.past_len + t) * nH * Dqk;
      float* vd = lc.v.data() + (s.past_len + t) * nH * Dv;
      for (int64_t hh = 0; hh < nH; ++hh) {
        std::memcpy(kd + hh * Dqk, kvr + hh * (Dn + Dv), Dn * sizeof(float));
        std::memcpy(kd + hh * Dqk + Dn, kr, Dr * sizeof(float));
        std::memcpy(vd + hh * Dv, kvr + hh * (Dn + Dv) + Dn, Dv * sizeof(float));
      }
    }
    Tensor qs = q.rows(s.row_begin, s.row_begin + s.n_tokens);  // [n, nH, Dqk]
    Tensor os = ops::causal_attention(qs, lc.k.data(), lc.v.data(), nH, Dv, s.past_len, k.scale);  // [n, nH·Dv]
    std::memcpy(o.f32() + s.row_begin * nH * Dv, os.f32(), os.numel() * sizeof(float));
  }
  return ops::linear(a.o_proj, o, batch);
}

Tensor gated_mlp_forward(const GatedMlp& m, const Tensor& h, const ForwardBatch& batch) {
  return ops::linear(m.down, ops::silu_gate_halves(ops::linear(m.gate_up, h, batch)), batch);  // gate_up [N, 2W]
}

Tensor moe_forward(const Config& c, const Moe& m, const Tensor& h, const ForwardBatch& batch) {
  Tensor logits = ops::linear(m.gate, h, batch);  // [N, E], fp32 like HF's router
  ops::Routing routing = ops::route_sigmoid_grouped(logits, m.score_bias, c.n_group, c.topk_group,
                                                    c.num_experts_per_tok, c.norm_topk_prob,
                                                    c.routed_scaling_factor);
  Tensor out = ops::moe_experts(h, routing, m.gate_up, m.down, ops::ExpertActivation::kSiluGated, batch);  // [N, H]
  ops::add_inplace(out, gated_mlp_forward(m.shared, h, batch));
  return out;
}

}  // namespace hylora::deepseek_v3
