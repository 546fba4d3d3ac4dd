// Chunked (WY / UT transform) form of the gated delta rule for prefill; same math, arguments and state layout as
// cuda::gated_delta_rule (recurrent.h), which dispatches here for long sequences. Dk, Dv ≤ 128.
//
// Per sequence, value head h, chunk of C = 64 tokens t = 0..C-1 (state S0 [Dk, Dv] at the chunk start, q̂/k̂ the
// l2-normalised rows, b_t = Σ_{s≤t} g_s the in-chunk cumulative log decay, γ_t = e^{b_t}):
//   L[t,s] = β_t e^{b_t−b_s} k̂_t·k̂_s (s < t, else 0)          strictly lower [C, C]
//   (I + L) D = diag(β) V − diag(β γ) K̂ S0                      forward substitution, D [C, Dv] (the deltas d_t)
//   O = diag(γ) Q̂ S0 + P D,  P[t,s] = e^{b_t−b_s} q̂_t·k̂_s (s ≤ t)
//   S ← γ_{C−1} S0 + K̂ᵀ diag(e^{b_{C−1}−b_s}) D
// (unrolling S_t = α_t S_{t−1} + k̂_t d_tᵀ over the chunk gives S_t = γ_t S0 + Σ_{s≤t} e^{b_t−b_s} k̂_s d_sᵀ;
// substituting into d_t = β_t (v_t − α_t S_{t−1}ᵀ k̂_t) gives the triangular system.)
//
// Split so that only S0-dependent work is sequential. With X = (I + L)⁻¹, W = X diag(βγ) K̂ and U = X diag(β) V
// depend on the chunk's own rows only, and D = U − W S0. Hence three kernels (gdn_chunked.cu):
//   1 prep   parallel over (chunk, value head): k̂, b, L, X, W, U → workspace (the O(C²·Dk) and O(C³) part)
//   2 state  sequential over a sequence's chunks, parallel over (sequence, value head, 32 Dv columns):
//            stores S0, D = U − W S0, S ← γ_last S0 + K̂ᵀ diag(e^{b_last−b}) D (two [C, Dk]·[Dk, 32]-sized products a
//            chunk: the least work the recurrence forces into the sequential pass)
//   3 out    parallel over (chunk, value head, 64 Dv columns): O = diag(γ) Q̂ S0 + P D from the stored S0 and D
// The previous single kernel did all of it inside the sequential loop, the Dk-only part once per Dv tile, on 128 blocks
// for one sequence of Qwen3.5-4B; storing S0 per chunk (the largest workspace piece) is what lets O leave the loop.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/dtype.h"

namespace hylora::cuda {

// Arguments as gated_delta_rule (recurrent.h), plus `workspace`: device fp32, at least
// gated_delta_rule_chunked_workspace_floats(S, T, Hk, Hv, Dk, Dv) floats, its contents dead after the call (the step's
// scratch arena). Returns cudaErrorInvalidValue for Dk > 128, Dv > 128 or a null workspace. T must equal
// cu_seqlens[S] − cu_seqlens[0].
cudaError_t gated_delta_rule_chunked(DType dt, const void* q, int64_t ldq, const void* k, int64_t ldk, const void* v,
                                     int64_t ldv, const void* g, int64_t ldg, const void* beta, int64_t ldb, void* o,
                                     int64_t ldo, float* state_pool, const int32_t* state_slot,
                                     const int32_t* cu_seqlens, int64_t S, int64_t T, int64_t Hk, int64_t Hv,
                                     int64_t Dk, int64_t Dv, float* workspace, cudaStream_t stream);

// Workspace of one call (floats), with NCB = ⌊T/64⌋ + S (a bound on Σ_s ⌈len_s/64⌉, the number of chunks):
//   T·Hv·Dk (W) + T·Hv·Dv (U, then D) + T·Hk·Dk (k̂) + T·Hv (b) [each rounded up to a multiple of 4]
//   + NCB·Hv·Dk·Dv (the state at each chunk's start).
// Qwen3.5-4B (Hk 16, Hv 32, Dk = Dv = 128), one sequence of 8192 tokens: 152 M floats = 607 MB, ~74 KB a token; the
// per-chunk states dominate, and with many short sequences (the dispatch needs T ≥ 16·S, so NCB ≤ 5T/64) they reach
// ~5× that piece: ≤ ~200 KB a token.
size_t gated_delta_rule_chunked_workspace_floats(int64_t S, int64_t T, int64_t Hk, int64_t Hv, int64_t Dk,
                                                 int64_t Dv);

// Whether gated_delta_rule may dispatch prefill here (default true; the checks' timings turn it off to time the
// sequential kernel). Host-side switch, not thread-safe; read at each call.
void set_gdn_chunked_enabled(bool on);
bool gdn_chunked_enabled();

}  // namespace hylora::cuda
