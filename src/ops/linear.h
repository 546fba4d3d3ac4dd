#pragma once
// Dense GEMMs, float32 on the CPU (OpenBLAS), cuBLASLt on the GPU. Operands may be strided 2-D views (ld).
#include "core/exec_ctx.h"

namespace hylora::ops {

// y[M, N] = x[M, K] · W[N, K]ᵀ  (accumulate: y += …).
void matmul_nt(ExecCtx& ctx, const Tensor& x, const Tensor& w, Tensor& y, bool accumulate = false);
// y[M, N] = x[M, K] · W[K, N]  (accumulate: y += …).
void matmul_nn(ExecCtx& ctx, const Tensor& x, const Tensor& w, Tensor& y, bool accumulate = false);
// y[M, N] += b[N] on every row.
void add_bias(ExecCtx& ctx, const Tensor& b, Tensor& y);

}  // namespace hylora::ops
