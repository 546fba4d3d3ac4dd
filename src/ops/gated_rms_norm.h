#pragma once
// Gated group RMSNorm (Mamba2's output norm, HF Zamba2RMSNormGated / mamba_ssm RMSNormGated), float32:
//   kGateBeforeNorm (norm_before_gate = False, Nemotron-H):  u = y · silu(z);  out = w · u · rsqrt(mean_g(u²) + eps)
//   kGateAfterNorm  (norm_before_gate = True):               out = w · y · rsqrt(mean_g(y²) + eps) · silu(z)
// where mean_g averages over each consecutive group of `group` elements of a row (group size = D / n_groups).
#include "core/tensor.h"

namespace hylora::ops {

enum class GateOrder { kGateBeforeNorm, kGateAfterNorm };

// y, z [n, D]; w [D]; D % group == 0. Returns [n, D].
Tensor rms_norm_gated(const Tensor& y, const Tensor& z, const Tensor& w, int64_t group, float eps, GateOrder order);

}  // namespace hylora::ops
