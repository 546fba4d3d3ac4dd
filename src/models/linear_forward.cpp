#include "models/linear_forward.h"

#include "models/tp_linear_forward.h"
#include "ops/elementwise.h"
#include "ops/linear.h"

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
void apply_lora(const ForwardArgs& a, const LoraTargetWeights& tw, const std::vector<LoraSlice>& decl,
                const Tensor& x, const ops::LoraSegments& seg, Tensor& y) {
  const auto slices = tw.slice_ptrs();
  Tensor s = a.tmp({seg.num_rows, static_cast<int64_t>(slices.size()), a.lora->max_rank});  // fp32 shrink result
  ops::lora_shrink(a.ctx, x, seg, slices, s);
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
  ops::matmul_nt(a.ctx, x, lin.weight, y);
  if (lin.bias.defined()) ops::add_bias(a.ctx, lin.bias, y);
  const ops::LoraSegments& sg = seg ? *seg : a.step.lora;
  if (!a.lora || sg.empty() || lin.lora_id < 0) return;
  const LoraTargetWeights& tw = a.lora->linears.at(lin.lora_id);
  if (!tw.active_for(sg.group_host)) return;  // no adapter of the step touches it: its LoRA terms are exact zeros
  apply_lora(a, tw, lin.slices, x, sg, y);
}

Tensor linear(const ForwardArgs& a, const Linear& lin, const Tensor& x, const ops::LoraSegments* seg) {
  Tensor y = a.tmp({x.dim(0), lin.out_features()});
  linear(a, lin, x, y, seg);
  return y;
}

void expert_lora(const ForwardArgs& a, const ExpertLinear& lin, const Tensor& x, const ops::LoraSegments& seg,
                 Tensor& y) {
  if (!a.lora || seg.empty() || lin.lora_id < 0) return;
  const LoraTargetWeights& tw = a.lora->experts.at(lin.lora_id);
  // The permutation's segments carry no host slots (slot·E + expert groups): decide on the step's own slots.
  if (!tw.active_for(a.step.lora.group_host)) return;
  apply_lora(a, tw, lin.slices, x, seg, y);
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
