#include "models/shared_layers.h"

#include "models/linear_forward.h"
#include "models/tp_linear_forward.h"
#include "ops/attention.h"
#include "ops/moe.h"

namespace hylora {

void logits_head(const ForwardArgs& a, const Tensor& x, const Tensor& norm_w, float eps, ops::NormKind kind,
                 const Linear& lm_head, Tensor& logits) {
  const int64_t R = a.step.logit_rows.numel(), H = x.dim(1);
  Tensor xr = a.tmp({R, H});  // only the rows that need logits go through the norm and lm_head
  ops::gather_rows(a.ctx, x, a.step.logit_rows, xr);
  ops::rms_norm(a.ctx, xr, norm_w, H, eps, kind, xr);
  linear(a, lm_head, xr, logits, &a.step.logit_lora);
}

void attend_paged(const ForwardArgs& a, int64_t layer, const Tensor& q, const Tensor& k, const Tensor& v,
                  int64_t num_heads, float scale, Tensor& o) {
  LayerCache& c = a.caches.at(layer);
  HYLORA_CHECK(c.k.defined() && c.v.defined(), "internal: layer ", layer, " has no KV cache");
  Tensor kc = c.k.reshape({c.k.dim(0), c.k.dim(1), c.k.dim(2) * c.k.dim(3)});  // per token [nKV·Dk]
  Tensor vc = c.v.reshape({c.v.dim(0), c.v.dim(1), c.v.dim(2) * c.v.dim(3)});
  ops::paged_store(a.ctx, k, a.step.layout, kc);
  ops::paged_store(a.ctx, v, a.step.layout, vc);
  ops::paged_attention(a.ctx, q, c.k, c.v, a.step.layout, num_heads, scale, o);
}

void moe_experts(const ForwardArgs& a, const Tensor& x, const Tensor& ids, const Tensor& weights,
                 const ExpertLinear& up, const ExpertLinear& down, ExpertActivation act, Tensor& out) {
  const int64_t E = up.num_experts(), k = ids.dim(1), up_out = up.out_features();
  const int64_t inter = act == ExpertActivation::kSiluGated ? up_out / 2 : up_out;
  HYLORA_CHECK(up.in_features() == x.dim(1) && down.in_features() == inter, "internal: expert shapes ", up.name);
  const Tensor* route_ids = &ids;
  const Tensor* route_w = &weights;
  Tensor local_ids, local_w;
  if (up.ep_split) {  // a rank of an ep group: only its experts count (tp_linear_forward.h)
    local_ids = a.tmp(ids.shape(), DType::I32);
    local_w = a.tmp(weights.shape());
    tp_localize_routing(a, ids, weights, up.expert_begin, E, local_ids, local_w);
    route_ids = &local_ids;
    route_w = &local_w;
  }
  ops::MoePermutation perm;
  ops::moe_permute(a.ctx, *route_ids, a.step.row_slot, E, a.lora_active() ? a.lora->slots : 0, perm);
  const int64_t P = perm.num_pairs;
  Tensor xs = a.tmp({P, x.dim(1)});  // token row of each (expert-sorted) pair
  ops::moe_gather(a.ctx, x, perm, k, xs);
  Tensor h = a.tmp({P, up_out});
  expert_linear(a, up, xs, perm, h);
  Tensor act_out = a.tmp({P, inter});
  if (act == ExpertActivation::kSiluGated) {
    ops::silu_mul_halves(a.ctx, h, act_out);
  } else {
    ops::relu2_inplace(a.ctx, h);
    act_out = h;
  }
  Tensor y = a.tmp({P, down.out_features()});
  expert_linear(a, down, act_out, perm, y);
  ops::moe_combine(a.ctx, y, perm, *route_w, out);
}

}  // namespace hylora
