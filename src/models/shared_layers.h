#pragma once
// Layer pieces several architectures share, composed from the ops over the whole step: the logits head, attention
// over the paged KV cache, and the MoE expert block (permute → expert GEMMs with (expert, slot) LoRA → combine).
#include "models/forward_args.h"
#include "models/linear.h"
#include "ops/elementwise.h"

namespace hylora {

// logits [R, V] = lm_head( norm( x[logit rows] ) ), lm_head's LoRA over the logit rows' segments.
void logits_head(const ForwardArgs& a, const Tensor& x, const Tensor& norm_w, float eps, ops::NormKind kind,
                 const Linear& lm_head, Tensor& logits);

// Stores the step's k [T, nKV·Dk] and v [T, nKV·Dv] rows into layer `layer`'s paged cache, then attends:
// o [T, nH·Dv] = causal attention of q [T, nH·Dk] over the cache.
void attend_paged(const ForwardArgs& a, int64_t layer, const Tensor& q, const Tensor& k, const Tensor& v,
                  int64_t num_heads, float scale, Tensor& o);

enum class ExpertActivation {
  kSiluGated,  // up is [gate | up] (2I rows): h = silu(gate) · up
  kRelu2,      // up is I rows: h = relu(up)²
};

// out[T, out_dim] = Σ_j w[t,j] · down_e( act( up_e(x_t) ) ), e = ids[t,j], with each expert's LoRA deltas added to
// its up and down outputs before the activation / routing weight (docs/lora.md §4). x [T, in]; ids [T, k] int32,
// weights [T, k].
void moe_experts(const ForwardArgs& a, const Tensor& x, const Tensor& ids, const Tensor& weights,
                 const ExpertLinear& up, const ExpertLinear& down, ExpertActivation act, Tensor& out);

}  // namespace hylora
