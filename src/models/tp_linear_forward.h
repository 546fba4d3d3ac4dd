#pragma once
// The tensor-parallel forms of linear() and embed() (docs/multi_gpu.md §3), reached only when ForwardArgs::comm is
// set and the projection's TpRole says it talks to the other ranks; the single-rank path never calls these.
#include "models/forward_args.h"
#include "models/linear.h"

namespace hylora {

// kRowReduce: x [N, in_local] (this rank's input columns) -> y [N, out], the same on every rank: the partial GEMM
// (plus the rank's column share of any modules_to_save delta) and the partial LoRA shrink s [rows, slices, max_r]
// (A cut by the same columns) go through ONE all-reduce; then the bias and the expand with the replicated B, once.
// kGatherColumns: x [N, in] -> local [N, out_local] as on one rank, all-gathered into y [N, ranks · out_local]; with
// shards of unequal widths (Linear::gather_widths: a vocabulary that does not divide) each is padded to the widest
// for the gather and the padding dropped after it, so y is [N, Σ widths] = [N, V] with no padded column.
void tp_linear(const ForwardArgs& a, const Linear& lin, const Tensor& x, Tensor& y, const ops::LoraSegments& seg);

// Vocabulary-split embedding: y [T, H] = Σ over ranks of (table rows this rank holds)[ids] + the LoRA shrink of the
// rank's A columns, one all-reduce, then the expand with the replicated B. Ids held elsewhere contribute 0.
void tp_embed(const ForwardArgs& a, const Embedding& emb, Tensor& y);

// Expert parallelism: ids, weights [T, k] -> local ids e − e0 and the weights of pairs routed to this rank's experts
// [e0, e0 + n) (ops::localize_expert_routing, on the step's device); a pair routed elsewhere becomes local expert 0
// with weight 0, so the combine adds only this rank's experts (the pairs still go through the expert GEMMs: dropping
// them from the permutation would save that work, a later optimisation).
void tp_localize_routing(const ForwardArgs& a, const Tensor& ids, const Tensor& weights, int64_t e0, int64_t n,
                         Tensor& local_ids, Tensor& local_weights);

// The one all-reduce at the end of an MoE block on a rank of a tensor-parallel group: out [T, H] holds this rank's
// experts' contribution plus its partial shared expert (whose row-parallel down_proj is left unreduced,
// TpRole::kLocal, by dist/shard_model.cpp). No-op on one rank.
void tp_all_reduce(const ForwardArgs& a, Tensor& t);
inline void tp_reduce_moe_block(const ForwardArgs& a, Tensor& out) {
  if (a.comm) tp_all_reduce(a, out);
}

}  // namespace hylora
