#pragma once
// Causal depthwise conv along time over a packed step, continuing each sequence from its state slot:
//   y[t,c] = act( b[c] + Σ_{j=0..K-1} w[c,j] · u[t-K+1+j, c] ),  u = [state (K-1 older inputs) ; x of the sequence]
// state pool [slots, C, K-1] holds each sequence's last K-1 *pre-conv* inputs, oldest first (zeros for a new
// sequence) and is updated in place. act = silu when `silu`, identity otherwise.
#include "core/exec_ctx.h"
#include "ops/varlen.h"

namespace hylora::ops {

// x [T, C] (ld); w [C, K]; bias [C] or undefined; y [T, C] (ld).
void causal_conv1d(ExecCtx& ctx, const Tensor& x, const Tensor& w, const Tensor& bias, const SeqLayout& layout,
                   Tensor& state_pool, bool silu, Tensor& y);

}  // namespace hylora::ops
