#pragma once
// Gated group RMSNorm (Mamba2's output norm, HF Zamba2RMSNormGated / mamba_ssm RMSNormGated), float32:
//   kGateBeforeNorm (norm_before_gate = False, Nemotron-H):  u = y · silu(z);  out = w · u · rsqrt(mean_g(u²) + eps)
//   kGateAfterNorm  (norm_before_gate = True, Qwen3.5 GDN):  out = w · y · rsqrt(mean_g(y²) + eps) · silu(z)
// where mean_g averages over each consecutive group of `group` elements of a row (group size = D / n_groups).
#include "core/exec_ctx.h"

namespace hylora::ops {

enum class GateOrder { kGateBeforeNorm, kGateAfterNorm };

// y, z [n, D] (ld); w [D]; D % group == 0. out [n, D] (may alias y).
void rms_norm_gated(ExecCtx& ctx, const Tensor& y, const Tensor& z, const Tensor& w, int64_t group, float eps,
                    GateOrder order, Tensor& out);

}  // namespace hylora::ops
