#pragma once
// One projection's forward on one rank of a tensor-parallel group (docs/multi_gpu.md §3), over the ops the
// single-GPU path uses (matmul_nt, lora_shrink / lora_expand over the step's LoRA segments):
// * column: x [T, in] (every rank has all of it) -> y [T, out_local]: base GEMM, shrink with the replicated A,
//   expand with this rank's rows of each slice's B. No communication.
// * row: x [T, in_local] (this rank's input columns) -> y [T, out], the same on every rank: the partial base output
//   and the partial shrink s [rows, slices, max_r] (A cut by the same columns) are packed into one buffer and
//   summed by ONE all-reduce; then the bias and the expand with the replicated B. The LoRA delta is therefore added
//   once, from the full shrink, not once per rank.
// * replicated: x [T, in] -> y [T, out], as on one GPU.
#include "dist/communicator.h"
#include "dist/shard_tensors.h"
#include "ops/lora.h"
#include "ops/moe.h"

namespace hylora::dist {

void sharded_linear(ExecCtx& ctx, Communicator& comm, const LinearShard& w, const Tensor& x,
                    const ops::LoraSegments& seg, Tensor& y);

// Expert parallelism. Routing restricted to the experts [e0, e0 + n) a rank holds: ids [T, k] int32 -> local ids
// e − e0, weights [T, k] kept; a pair routed elsewhere becomes local expert 0 with weight 0, so the rank's combine
// adds only its own experts' outputs (the CPU reference; a GPU permutation should drop those pairs instead).
void localize_routing(const Tensor& ids, const Tensor& weights, Range experts, Tensor& local_ids, Tensor& local_weights);

// ys [P, out_local] = xs [P, in_local] · W_eᵀ + the LoRA of each sorted row's (slot, expert) group, for the sorted
// pairs of `perm` (built over the rank's local experts). Column-parallel inside the expert: B rows cut per slice.
// Row-parallel inside the expert: the partial shrink is expanded with the replicated B here and the MoE block's one
// all-reduce (which already sums the experts held by other ranks) sums the partial deltas — exact by linearity, and
// no per-ep-group communicator is needed (different ep groups sort different pairs).
void expert_projection(ExecCtx& ctx, const LinearShard& w, const Tensor& xs, const ops::MoePermutation& perm,
                       Tensor& ys);

}  // namespace hylora::dist
