#pragma once
// Gated delta rule (Gated DeltaNet's recurrence, models.md §1.4) over one sequence's new tokens, continuing from its
// cached state. Math, per value head h with key head kh = h / (Hv / Hk) (repeat_interleave: value head h uses key
// head floor(h / r), not h % Hk), all float32:
//   q̂_t = q_t · rsqrt(Σ q_t² + 1e-6) · Dk^-½ ,  k̂_t = k_t · rsqrt(Σ k_t² + 1e-6)        (l2norm, eps inside)
//   S_h ← e^{g[t,h]} · S_h                                                              S_h ∈ R^{Dk×Dv}
//   S_h ← S_h + k̂_t ⊗ β[t,h] · (v[t,h] − S_hᵀ k̂_t)
//   o[t,h] = S_hᵀ q̂_t
// i.e. S_t = e^{g_t} (I − β_t k̂_t k̂_tᵀ) S_{t−1} + β_t k̂_t v_tᵀ. HF runs the chunked (UT transform) form for
// prefill and this loop for decode; both are exact forms of the same recurrence (≈1e-6 rel apart in fp32).
#include "core/tensor.h"

namespace hylora::ops {

// q, k [n, Hk*Dk] (raw: the l2norm and the Dk^-½ scale are applied here); v [n, Hv*Dv]; g [n, Hv] log-space decay
// (≤ 0); beta [n, Hv]; state [Hv, Dk, Dv], updated in place (zeros for a new sequence). Hv % Hk == 0.
// Returns o [n, Hv*Dv] (head-major). Parallel over value heads.
Tensor gated_delta_rule(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& beta,
                        Tensor& state);

}  // namespace hylora::ops
