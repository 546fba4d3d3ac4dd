#pragma once
// Mamba2 selective state-space recurrence (the "SSD" scan, computed step by step) over one sequence's new tokens,
// continuing from its cached state. Math, per head h with B/C group g = h / (nh / G) (repeat_interleave):
//   Δ[t,h] = max( softplus(dt[t,h] + dt_bias[h]), dt_min )          (torch softplus, threshold 20)
//   S_h    ← exp(Δ[t,h] · A[h]) · S_h + Δ[t,h] · x[t,h,:] ⊗ B[t,g,:]     S_h ∈ R^{hd×N}, float32
//   y[t,h,:] = S_h · C[t,g,:] + D[h] · x[t,h,:]
// A = -exp(A_log) is passed precomputed. The Δ clamp is HF's prefill clamp (time_step_limit = (time_step_min, inf));
// we apply it on every call, so a decode step computes exactly what a prefill computes (HF's single-token decode
// path skips it; see models.md §2.3).
#include "core/tensor.h"

namespace hylora::ops {

// x [n, nh*hd]; dt [n, nh] (raw, before bias and softplus); B, C [n, G*N]; A, D, dt_bias [nh];
// state [nh, hd, N], updated in place (zeros for a new sequence). Returns y [n, nh*hd]. Parallel over heads.
Tensor ssm_scan(const Tensor& x, const Tensor& dt, const Tensor& B, const Tensor& C, const Tensor& A,
                const Tensor& D, const Tensor& dt_bias, float dt_min, Tensor& state);

}  // namespace hylora::ops
