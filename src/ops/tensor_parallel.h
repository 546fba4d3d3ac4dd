#pragma once
// The per-rank index work of a tensor-parallel step (docs/multi_gpu.md §6.1): ops, not host loops, so a rank's step
// runs on its device like every other op (the ids, masks and routing live where the step does).
#include "core/exec_ctx.h"

namespace hylora::ops {

// Vocabulary-split embedding: a rank holds table rows [begin, begin + size). For each id of ids [T] int32:
// local[t] = ids[t] − begin when the rank holds it, else 0 (a valid row whose lookup is then zeroed), and
// elsewhere[t] = 1 when another rank holds it, else 0. local, elsewhere [T] int32.
void localize_vocab_ids(ExecCtx& ctx, const Tensor& ids, int64_t begin, int64_t size, Tensor& local,
                        Tensor& elsewhere);
// Zeroes row i of t [n, …] (float32; dim 0 may be strided, the rest contiguous) where mask[perm[i]] != 0, or
// mask[i] != 0 when perm is undefined (the LoRA shrink's logical row i is token perm[i]). mask int32 [≥ n or
// > max perm], perm int32 [n].
void zero_masked_rows(ExecCtx& ctx, const Tensor& mask, const Tensor& perm, Tensor& t);
// Expert parallelism: ids, weights [T, k] (int32, float32) -> local ids e − e0 and the weights of pairs routed to
// this rank's experts [e0, e0 + n); a pair routed elsewhere becomes local expert 0 with weight 0, so the combine adds
// only this rank's experts. local_ids, local_weights [T, k], contiguous like ids and weights.
void localize_expert_routing(ExecCtx& ctx, const Tensor& ids, const Tensor& weights, int64_t e0, int64_t n,
                             Tensor& local_ids, Tensor& local_weights);

}  // namespace hylora::ops
