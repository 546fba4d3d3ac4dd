// Chunked (WY / UT transform) form of the gated delta rule for prefill; same math, arguments and state layout as
// cuda::gated_delta_rule (recurrent.h), which dispatches here for long sequences. Dk ≤ 128.
//
// Per sequence, value head h, chunk of C = 64 tokens t = 0..C-1 (state S0 [Dk, Dv] at the chunk start, q̂/k̂ the
// l2-normalised rows, b_t = Σ_{s≤t} g_s the in-chunk cumulative log decay, γ_t = e^{b_t}):
//   L[t,s] = β_t e^{b_t−b_s} k̂_t·k̂_s (s < t, else 0)          strictly lower [C, C]
//   (I + L) D = diag(β) V − diag(β γ) K̂ S0                      forward substitution, D [C, Dv] (the deltas d_t)
//   O = diag(γ) Q̂ S0 + P D,  P[t,s] = e^{b_t−b_s} q̂_t·k̂_s (s ≤ t)
//   S ← γ_{C−1} S0 + K̂ᵀ diag(e^{b_{C−1}−b_s}) D
// (unrolling S_t = α_t S_{t−1} + k̂_t d_tᵀ over the chunk gives S_t = γ_t S0 + Σ_{s≤t} e^{b_t−b_s} k̂_s d_sᵀ;
// substituting into d_t = β_t (v_t − α_t S_{t−1}ᵀ k̂_t) gives the triangular system.)
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/dtype.h"

namespace hylora::cuda {

// Arguments as gated_delta_rule (recurrent.h). Returns cudaErrorInvalidValue for Dk > 128.
cudaError_t gated_delta_rule_chunked(DType dt, const void* q, int64_t ldq, const void* k, int64_t ldk, const void* v,
                                     int64_t ldv, const void* g, int64_t ldg, const void* beta, int64_t ldb, void* o,
                                     int64_t ldo, float* state_pool, const int32_t* state_slot,
                                     const int32_t* cu_seqlens, int64_t S, int64_t T, int64_t Hk, int64_t Hv,
                                     int64_t Dk, int64_t Dv, cudaStream_t stream);

// Whether gated_delta_rule may dispatch prefill here (default true; the checks' timings turn it off to time the
// sequential kernel). Host-side switch, not thread-safe; read at each call.
void set_gdn_chunked_enabled(bool on);
bool gdn_chunked_enabled();

}  // namespace hylora::cuda
