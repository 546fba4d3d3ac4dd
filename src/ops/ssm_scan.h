#pragma once
// Mamba2 selective state-space recurrence (the "SSD" scan, computed step by step) over a packed step, each sequence
// continuing from its state slot. Math, per head h with B/C group g = h / (nh / G) (repeat_interleave):
//   Δ[t,h] = max( softplus(dt[t,h] + dt_bias[h]), dt_min )          (torch softplus, threshold 20)
//   S_h    ← exp(Δ[t,h] · A[h]) · S_h + Δ[t,h] · x[t,h,:] ⊗ B[t,g,:]     S_h ∈ R^{hd×N}, float32
//   y[t,h,:] = S_h · C[t,g,:] + D[h] · x[t,h,:]
// A = -exp(A_log) is passed precomputed. The Δ clamp is HF's prefill clamp (time_step_limit = (time_step_min, inf));
// we apply it on every call, so a decode step computes exactly what a prefill computes (HF's single-token decode
// path skips it; see docs/models.md §2.3).
#include "core/exec_ctx.h"
#include "ops/varlen.h"

namespace hylora::ops {

// x [T, nh·hd] (ld); dt [T, nh] (ld; raw, before bias and softplus); B, C [T, G·N] (ld); A, D, dt_bias [nh];
// state pool [slots, nh, hd, N] updated in place (zeros for a new sequence). y [T, nh·hd].
void ssm_scan(ExecCtx& ctx, const Tensor& x, const Tensor& dt, const Tensor& B, const Tensor& C, const Tensor& A,
              const Tensor& D, const Tensor& dt_bias, float dt_min, const SeqLayout& layout, Tensor& state_pool,
              Tensor& y);

}  // namespace hylora::ops
