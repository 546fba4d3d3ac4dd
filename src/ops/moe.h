#pragma once
// Mixture-of-experts as tensor ops: routing produces top-k ids and weights; a permutation sorts the (token, choice)
// pairs by expert and, inside an expert, by the token's adapter slot, so that expert GEMMs and expert LoRA both run
// over contiguous row ranges; a combine scatters the weighted expert outputs back to tokens.
#include <cstdint>

#include "core/exec_ctx.h"
#include "ops/lora.h"

namespace hylora::ops {

// Qwen3.5-MoE / Qwen3-MoE: p = softmax(logits) (fp32); top-k by p; weights = p of the chosen experts, renormalised
// to sum 1 when `normalize`. logits [T, E] (ld) -> ids [T, k] int32, weights [T, k] fp32.
void route_softmax_topk(ExecCtx& ctx, const Tensor& logits, int64_t k, bool normalize, Tensor& ids, Tensor& weights);

// DeepSeek-V3 / Nemotron-H: s = sigmoid(logits); selection by s + bias within the best `topk_group` of `n_group`
// contiguous groups (group score = sum of the group's top-2 of s + bias); weights = s of the chosen experts,
// optionally renormalised (÷ (sum + 1e-20)), times `scale`. logits [T, E], bias [E].
void route_sigmoid_grouped(ExecCtx& ctx, const Tensor& logits, const Tensor& bias, int64_t n_group,
                           int64_t topk_group, int64_t k, bool normalize, float scale, Tensor& ids, Tensor& weights);

// The pairs (t, j) of a routing, sorted by (expert, slot of token t, t).
struct MoePermutation {
  int64_t num_pairs = 0;  // P = T · k
  Tensor pair;            // [P] int32: sorted position -> pair index t·k + j
  Tensor expert_offsets;  // [E + 1] int32: expert e owns sorted rows [off[e], off[e+1])
  LoraSegments lora;      // sorted rows of tokens bound to an adapter, one segment per (expert, slot) in expert-major
                          // order; group = slot · E + expert; perm indexes sorted rows. The CPU lists the non-empty
                          // segments only; the GPU lists the non-empty ones first, then empty ones, G = min(E ·
                          // num_slots, P) in all (at most P are non-empty), and takes num_rows = P as a bound (perm
                          // entries past indptr[G] unused), so that no size depends on the routing and nothing is
                          // read back to the host.
};

// ids [T, k]; row_slot [T] int32 (-1 = base model, else < num_slots); num_slots: the adapter slots the step may use
// (0 when no token has an adapter). Fills every tensor of `out` (allocated from ctx.scratch).
void moe_permute(ExecCtx& ctx, const Tensor& ids, const Tensor& row_slot, int64_t num_experts, int64_t num_slots,
                 MoePermutation& out);

// xs[i] = x[pair[i] / k] (the token row of each sorted pair). x [T, in], xs [P, in].
void moe_gather(ExecCtx& ctx, const Tensor& x, const MoePermutation& perm, int64_t k, Tensor& xs);

// ys[rows of expert e] = xs[rows of expert e] · W[e]ᵀ. W [E, out, in], xs [P, in], ys [P, out].
void moe_expert_gemm(ExecCtx& ctx, const Tensor& xs, const Tensor& w, const MoePermutation& perm, Tensor& ys);

// out[t] = Σ_j weights[t, j] · ys[sorted row of pair (t, j)]. ys [P, H], out [T, H] (overwritten).
void moe_combine(ExecCtx& ctx, const Tensor& ys, const MoePermutation& perm, const Tensor& weights, Tensor& out);

}  // namespace hylora::ops
