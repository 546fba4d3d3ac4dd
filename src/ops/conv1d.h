#pragma once
#include "core/tensor.h"

namespace hylora::ops {

// Causal depthwise conv along time for one sequence, continuing from a cached state:
//   y[t,c] = act( b[c] + Σ_{j=0..K-1} w[c,j] · u[t-K+1+j, c] ),  u = [state (K-1 older inputs) ; x]
// x [n, C]; w [C, K]; bias [C] or undefined; state [C, K-1] holds the last K-1 *pre-conv* inputs (oldest first,
// zeros for a new sequence) and is updated in place. act = silu when `silu`, identity otherwise. Returns y [n, C].
Tensor causal_conv1d(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& state, bool silu);

}  // namespace hylora::ops
