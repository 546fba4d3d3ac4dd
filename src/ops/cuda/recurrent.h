// Recurrent ops of the hybrid layers over state-slot pools, varlen over cu_seqlens (device int32 [S+1]: new rows of
// sequence s are [cu[s], cu[s+1])) with per-sequence state slots (device int32 [S]; a slot < 0 skips the
// sequence: padding). Activations of type dt, states fp32. Decode is the same call with one row per sequence.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/dtype.h"

namespace hylora::cuda {

// Gated delta rule (Qwen3.5 GDN, models.md §1.4). Per sequence, value head h (key head kh = h / (Hv/Hk)), token t:
//   q̂ = q[t,kh]·rsqrt(Σq² + 1e-6)·Dk^-½,  k̂ = k[t,kh]·rsqrt(Σk² + 1e-6)
//   u = (e^{g[t,h]} S)ᵀ k̂;   d = β[t,h] (v[t,h] − u);   S ← e^{g[t,h]} S + k̂ ⊗ d;   o[t,h] = Sᵀ q̂
//   q, k [T, Hk*Dk] (ld ldq, ldk), v [T, Hv*Dv] (ld ldv), g, beta [T, Hv] (ld ldg, ldb; g = log decay),
//   o [T, Hv*Dv] (ld ldo), state pool [slots, Hv, Dk, Dv] fp32. Dk ≤ 256.
// Sequential over tokens, parallel over (sequence, head, 32-column tiles of Dv); the state lives in registers
// (decode with Dk ≤ 128: 4 warps per tile streaming the state as float4, two cross-warp reductions per token).
// Prefill with Dk, Dv ≤ 128 and T ≥ 16·S runs the chunked form instead (gdn_chunked.h) when given a `workspace` of
// gated_delta_rule_workspace_floats(...) floats (device fp32, dead after the call); with a null workspace it stays on
// the sequential kernel.
cudaError_t gated_delta_rule(DType dt, const void* q, int64_t ldq, const void* k, int64_t ldk, const void* v,
                             int64_t ldv, const void* g, int64_t ldg, const void* beta, int64_t ldb, void* o,
                             int64_t ldo, float* state_pool, const int32_t* state_slot, const int32_t* cu_seqlens,
                             int64_t S, int64_t T, int64_t Hk, int64_t Hv, int64_t Dk, int64_t Dv, float* workspace,
                             cudaStream_t stream);
// Floats of workspace gated_delta_rule uses for these shapes: 0 unless it would run the chunked form.
size_t gated_delta_rule_workspace_floats(int64_t S, int64_t T, int64_t Hk, int64_t Hv, int64_t Dk, int64_t Dv);

// Mamba2 selective scan (models.md §2; CPU ops/ssm_scan.h). Per sequence, head h (group gi = h / (nh/G)), token t:
//   Δ = max(softplus(dt[t,h] + dt_bias[h]), dt_min)      (torch softplus, threshold 20)
//   S_h ← e^{Δ·A[h]} S_h + Δ·x[t,h,:] ⊗ B[t,gi,:];   y[t,h,:] = S_h C[t,gi,:] + D[h]·x[t,h,:]
//   x [T, nh*hd] (ld ldx), dt [T, nh] raw (ld lddt), B, C [T, G*N] (ld ldB, ldC), A, D, dt_bias [nh] fp32,
//   y [T, nh*hd] (ld ldy), state pool [slots, nh, hd, N] fp32. N ≤ 256. Prefill with N ≤ 128 and T ≥ 16·S can run the
//   chunked form (ssd_chunked.h; off by default).
cudaError_t ssm_scan(DType dt, const void* x, int64_t ldx, const void* dtr, int64_t lddt, const void* B, int64_t ldB,
                     const void* C, int64_t ldC, const float* A, const float* D, const float* dt_bias, float dt_min,
                     void* y, int64_t ldy, float* state_pool, const int32_t* state_slot, const int32_t* cu_seqlens,
                     int64_t S, int64_t T, int64_t nh, int64_t hd, int64_t G, int64_t N, cudaStream_t stream);

// Causal depthwise conv1d with state slots. Per sequence, channel c, new row i (u = [state(K-1 oldest first), x]):
//   y[t_i, c] = act(bias[c] + Σ_{j<K} w[c, j] · u[i + j])      act = SiLU or identity
//   new state = the last K-1 entries of u (works for sequences shorter than K-1 too).
//   x [T, C] (ld ldx), w [C, K] (type dt), bias [C] or nullptr (type dt), y [T, C] (ld ldy; must not alias x),
//   state pool [slots, C, K-1] fp32. K ≤ 8.
cudaError_t causal_conv1d(DType dt, const void* x, int64_t ldx, const void* w, const void* bias, void* y, int64_t ldy,
                          float* state_pool, const int32_t* state_slot, const int32_t* cu_seqlens, int64_t S,
                          int64_t T, int64_t C, int64_t K, bool silu, cudaStream_t stream);

}  // namespace hylora::cuda
