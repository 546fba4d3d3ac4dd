#include "models/linear_forward.h"

#include "models/tp_linear_forward.h"
#include "ops/device.h"
#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/moe.h"

namespace hylora {

// modules_to_save replacements: y[rows of slot, slice] += x[rows] (W' − W)ᵀ for that adapter's rows only. Rare (a
// full matrix per adapter): one op per (segment, slice) that has one, chosen from the host copy of the segments' slots.
void add_dense_deltas(const ForwardArgs& a, const std::vector<LoraSlice>& decl, const LoraTargetWeights& tw,
                      const Tensor& x, const ops::LoraSegments& seg, Tensor& y) {
  if (static_cast<int64_t>(seg.group_host.size()) != seg.num_segments) return;  // segments without slots (MoE)
  for (int64_t g = 0; g < seg.num_segments; ++g) {
    const int32_t slot = seg.group_host[g];
    if (slot >= static_cast<int32_t>(tw.dense_delta.size())) continue;
    const auto& deltas = tw.dense_delta[slot];
    for (size_t k = 0; k < deltas.size(); ++k)
      if (deltas[k].defined()) ops::lora_segment_dense_delta(a.ctx, x, seg, g, deltas[k], decl[k].out_offset, y);
  }
}

namespace {
// base() computes y from x (the base GEMM); the LoRA terms go around it: the shrink needs only x, so it is queued on
// the side stream first and runs beside the base GEMM (a GEMV at decode leaves SMs idle, and the shrink is a chain of
// small latency-bound loads); the expand adds into y, so it follows both. Without a side stream, shrink then base.
template <class Base>
void lora_around(const ForwardArgs& a, const LoraTargetWeights& tw, const std::vector<LoraSlice>& decl,
                 const Tensor& x, const ops::LoraSegments& seg, Tensor& y, Base&& base) {
  const auto slices = tw.slice_ptrs();
  Tensor s = a.tmp({seg.num_rows, static_cast<int64_t>(slices.size()), a.lora->max_rank});  // fp32 shrink result
  ops::SideWork shrink(a.ctx, [&] { ops::lora_shrink(a.ctx, x, seg, slices, s); });
  base();
  shrink.join();
  ops::lora_expand(a.ctx, s, seg, slices, y);
  if (!tw.dense_delta.empty()) add_dense_deltas(a, decl, tw, x, seg, y);
}
}  // namespace

void linear(const ForwardArgs& a, const Linear& lin, const Tensor& x, Tensor& y, const ops::LoraSegments* seg) {
  // One rank: one pointer test, then exactly the single-GPU path below.
  if (a.comm && lin.tp != TpRole::kLocal) return tp_linear(a, lin, x, y, seg ? *seg : a.step.lora);
  linear_local(a, lin, x, y, seg);
}

void linear_local(const ForwardArgs& a, const Linear& lin, const Tensor& x, Tensor& y, const ops::LoraSegments* seg) {
  HYLORA_CHECK(x.ndim() == 2 && x.dim(1) == lin.in_features(), "internal: ", lin.name, " expects input [N, ",
               lin.in_features(), "], got ", shape_str(x.shape()));
  const auto base = [&] {
    ops::matmul_nt(a.ctx, x, lin.weight, y);
    if (lin.bias.defined()) ops::add_bias(a.ctx, lin.bias, y);
  };
  const ops::LoraSegments& sg = seg ? *seg : a.step.lora;
  // No adapter of the step touches the projection: its LoRA terms are exact zeros.
  if (!a.lora || sg.empty() || lin.lora_id < 0 || !a.lora->linears.at(lin.lora_id).active_for(sg.group_host))
    return base();
  lora_around(a, a.lora->linears.at(lin.lora_id), lin.slices, x, sg, y, base);
}

Tensor linear(const ForwardArgs& a, const Linear& lin, const Tensor& x, const ops::LoraSegments* seg) {
  Tensor y = a.tmp({x.dim(0), lin.out_features()});
  linear(a, lin, x, y, seg);
  return y;
}

void expert_linear(const ForwardArgs& a, const ExpertLinear& lin, const Tensor& x, const ops::MoePermutation& perm,
                   Tensor& y) {
  const auto base = [&] { ops::moe_expert_gemm(a.ctx, x, lin.weight, perm, y); };
  // The permutation's segments carry no host slots (slot·E + expert groups): decide on the step's own slots.
  if (!a.lora || perm.lora.empty() || lin.lora_id < 0 ||
      !a.lora->experts.at(lin.lora_id).active_for(a.step.lora.group_host))
    return base();
  lora_around(a, a.lora->experts.at(lin.lora_id), lin.slices, x, perm.lora, y, base);
}

void embed(const ForwardArgs& a, const Embedding& emb, Tensor& y) {
  if (a.comm && emb.vocab_split) return tp_embed(a, emb, y);
  ops::embedding(a.ctx, emb.table, a.step.token_ids, y);
  if (!a.lora_active() || emb.lora_id < 0) return;
  const ops::LoraSegments& seg = a.step.lora;
  if (!a.lora->embedding.active_for(seg.group_host)) return;
  const auto slices = a.lora->embedding.slice_ptrs();
  Tensor s = a.tmp({seg.num_rows, 1, a.lora->max_rank});  // [rows, 1, max_r] fp32
  ops::lora_shrink_embedding(a.ctx, a.step.token_ids, seg, slices, s);
  ops::lora_expand(a.ctx, s, seg, slices, y);
  // A replaced embedding table: y[row] += (E' − E)[id].
  for (int64_t g = 0; g < static_cast<int64_t>(seg.group_host.size()); ++g) {
    const int32_t slot = seg.group_host[g];
    if (slot >= static_cast<int32_t>(a.lora->embedding_delta.size())) continue;
    const Tensor& d = a.lora->embedding_delta[slot];
    if (d.defined()) ops::lora_segment_embedding_delta(a.ctx, a.step.token_ids, seg, g, d, y);
  }
}

}  // namespace hylora
