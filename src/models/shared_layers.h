#pragma once
// Layer pieces several architectures share, composed from the ops over the whole step: the residual stream through
// the layers, the logits head, attention over the paged KV cache, and the MoE expert block (permute → expert GEMMs
// with (expert, slot) LoRA → combine).
#include "models/forward_args.h"
#include "models/linear.h"
#include "models/linear_forward.h"
#include "ops/elementwise.h"

namespace hylora {

// The decoder skeleton of every architecture's forward: x [T, H] = the step's token embeddings, then
// layer(i, x, h, y) for i < num_layers with two [T, H] temporaries h, y, the scratch arena rewound before each layer
// (the previous layer's temporaries are dead; x, h, y were taken before the mark). Returns x after the last layer.
template <typename LayerFn>
Tensor residual_stream(const ForwardArgs& a, const Embedding& emb, int64_t H, int64_t num_layers, LayerFn&& layer) {
  const int64_t T = a.step.num_tokens();
  Tensor x = a.tmp({T, H});
  embed(a, emb, x);
  Tensor h = a.tmp({T, H}), y = a.tmp({T, H});
  const ScratchArena::Mark layer_start = a.ctx.scratch.mark();
  for (int64_t i = 0; i < num_layers; ++i) {
    a.ctx.scratch.rewind(layer_start);
    layer(i, x, h, y);
  }
  return x;
}

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
