// Chunked (state-space dual) form of the Mamba2 selective scan for prefill; same math, arguments and state layout as
// cuda::ssm_scan (recurrent.h), which dispatches here for long sequences. N ≤ 128.
//
// Per sequence, head h, chunk of C = 64 tokens t = 0..C-1 (state S0 [hd, N] at the chunk start, Δ_t as in ssm_scan,
// b_t = Σ_{s≤t} Δ_s A[h] the in-chunk cumulative log decay, X = diag(Δ) x [C, hd]):
//   Y = diag(e^{b}) C S0ᵀ + P X + D[h] x,   P[t,s] = e^{b_t−b_s} C_t·B_s (s ≤ t, else 0)
//   S0 ← e^{b_{C−1}} S0 + Xᵀ diag(e^{b_{C−1}−b_s}) B
// (unrolling S_t = e^{Δ_t A} S_{t−1} + Δ_t x_t B_tᵀ: S_t = e^{b_t} S0 + Σ_{s≤t} e^{b_t−b_s} Δ_s x_s B_sᵀ.)
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/dtype.h"

namespace hylora::cuda {

// Arguments as ssm_scan (recurrent.h). Returns cudaErrorInvalidValue for N > 128.
cudaError_t ssm_scan_chunked(DType dt, const void* x, int64_t ldx, const void* dtr, int64_t lddt, const void* B,
                             int64_t ldB, const void* C, int64_t ldC, const float* A, const float* D,
                             const float* dt_bias, float dt_min, void* y, int64_t ldy, float* state_pool,
                             const int32_t* state_slot, const int32_t* cu_seqlens, int64_t S, int64_t T, int64_t nh,
                             int64_t hd, int64_t G, int64_t N, cudaStream_t stream);

// Whether ssm_scan may dispatch prefill here (default true: measured 2× at 128 heads; ssm_scan also requires
// nh·S ≥ 64; the checks' timing turns it on and off to compare). Host-side switch, not thread-safe; read at each call.
void set_ssd_chunked_enabled(bool on);
bool ssd_chunked_enabled();

}  // namespace hylora::cuda
