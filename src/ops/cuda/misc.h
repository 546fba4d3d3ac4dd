// RoPE, MoE routing, log-probabilities.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/dtype.h"

namespace hylora::cuda {

// RoPE in place on the first `rot` dims after `offset` of every head (CPU ops/rope.h, ops/rope_interleave.h):
//   c_i = cos(pos[t]·inv_freq[i])·scaling, s_i = sin(...)·scaling, i < rot/2, angle in fp32, cos/sin in double.
//   neox:        (a, b) = (v[i], v[i+rot/2])      -> v[i] = a c_i − b s_i, v[i+rot/2] = b c_i + a s_i
//   interleaved: (a, b) = (v[2i], v[2i+1])        -> written to halves as above (DeepSeek: pairs -> halves, then neox)
// x [T, heads*head_dim] (ld ldx), positions [T] int64, inv_freq [rot/2] fp32. rot ≤ 512.
cudaError_t rope(DType dt, void* x, int64_t ldx, int64_t T, int64_t heads, int64_t head_dim,
                 const int64_t* positions, const float* inv_freq, int64_t rot, int64_t offset, float scaling,
                 bool interleaved, cudaStream_t stream);

// MoE routing (CPU ops/moe.cpp), one warp per token; ties pick the lower expert index. logits fp32 [T, E] (ld).
//   softmax top-k:  p = softmax(logits); ids = top-k(p); w = p[ids] (/ Σ p[ids] if normalize)
//   sigmoid grouped: s = σ(logits); sc = s + bias; group score = sum of the 2 largest sc of each of n_group groups;
//     keep the topk_group best groups; ids = top-k(sc over kept groups); w = s[ids] (/ (Σ s[ids] + 1e-20) if
//     normalize) · scale.
// ids int32 [T, k], weights fp32 [T, k]. E ≤ 1024, k ≤ 32, n_group ≤ 32.
cudaError_t moe_route_softmax_topk(const float* logits, int64_t ld, int64_t T, int64_t E, int64_t k, bool normalize,
                                   int32_t* ids, float* weights, cudaStream_t stream);
cudaError_t moe_route_sigmoid_grouped(const float* logits, int64_t ld, const float* bias, int64_t T, int64_t E,
                                      int64_t n_group, int64_t topk_group, int64_t k, bool normalize, float scale,
                                      int32_t* ids, float* weights, cudaStream_t stream);

// Log-probabilities of selected rows: for r < R, row = rows ? rows[r] : r,
//   lse[r] = log Σ_v exp(logits[row, v]);  logprob[r] = logits[row, target[r]] − lse[r]
// logits [*, V] (ld) of type dt; rows, target int32 [R]; logprob, lse fp32 [R] (lse may be nullptr).
cudaError_t logprobs(DType dt, const void* logits, int64_t ld, int64_t V, const int32_t* rows, int64_t R,
                     const int32_t* target, float* logprob, float* lse, cudaStream_t stream);

}  // namespace hylora::cuda
