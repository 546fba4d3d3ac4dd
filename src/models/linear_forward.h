#pragma once
// The one entry point every projection goes through (docs/lora.md §2): the base GEMM, then — for rows bound to an
// adapter — the LoRA shrink/expand over all of the projection's slices and any modules_to_save replacement.
#include "models/forward_args.h"
#include "models/linear.h"
#include "ops/moe.h"

namespace hylora {

// y[N, out] = x[N, in] Wᵀ (+ b) (+ LoRA). The rows of x are the step's rows, grouped by `seg` (default: the step's
// LoRA segments; lm_head over the logit rows passes the logit segments).
void linear(const ForwardArgs& a, const Linear& lin, const Tensor& x, Tensor& y, const ops::LoraSegments* seg = nullptr);
// The same on this rank only, ignoring Linear::tp (the local part of a tensor-parallel projection).
void linear_local(const ForwardArgs& a, const Linear& lin, const Tensor& x, Tensor& y,
                  const ops::LoraSegments* seg = nullptr);
// modules_to_save replacements of the slots of `seg`: y[rows, slice k] += x[rows] (W' − W)_kᵀ.
void add_dense_deltas(const ForwardArgs& a, const std::vector<LoraSlice>& decl, const LoraTargetWeights& tw,
                      const Tensor& x, const ops::LoraSegments& seg, Tensor& y);
// Same, into a new scratch tensor [N, out].
Tensor linear(const ForwardArgs& a, const Linear& lin, const Tensor& x, const ops::LoraSegments* seg = nullptr);

// Expert projection over expert-sorted rows: y[P, out] = x[P, in] · W_eᵀ per row's expert (perm), plus the LoRA of
// the (expert, slot) segments perm.lora (group = slot·E + e).
void expert_linear(const ForwardArgs& a, const ExpertLinear& lin, const Tensor& x, const ops::MoePermutation& perm,
                   Tensor& y);

// y[T, H] = table[token ids] (+ embedding LoRA and replaced-table deltas of rows bound to an adapter).
void embed(const ForwardArgs& a, const Embedding& emb, Tensor& y);

}  // namespace hylora
