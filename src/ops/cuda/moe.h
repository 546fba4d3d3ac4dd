// MoE expert execution over the routing (ids/weights from misc.h's routers).
//   entries e = t*k + j (token t's j-th expert ids[e]), n = T*k.
// moe_permute: sorted[i] = the entries in expert order (stable: token order within an expert),
//   pos[e] = the i with sorted[i] == e, offsets[E+1]: expert x owns sorted positions [offsets[x], offsets[x+1]).
// moe_grouped_gemm: for every sorted position i with expert x:  y[i, :] = in_row(i) · W[x]ᵀ,  W [E, N, K] (type dt)
//   in_row(i) = x[sorted[i] / gather_k] (gather_k > 0: gathers token rows; the up projection) or x[i] (gather_k = 0:
//   rows already in sorted order; the down projection). x ld ldx, y [n, N] ld ldy.
// moe_activation: a = silu(h[:, :I]) · h[:, I:2I] (gated, h [n, 2I]) or relu(h)² (h [n, I]); a [n, I].
// moe_combine: out[t, :] (+)= Σ_j weights[t*k+j] · y[pos[t*k+j], :]   (fp32 sum in j order; out [T, H] ld ldo).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/dtype.h"

namespace hylora::cuda {

size_t moe_permute_workspace_bytes(int64_t n, int64_t E);
cudaError_t moe_permute(const int32_t* ids, int64_t n, int64_t E, int32_t* sorted, int32_t* pos, int32_t* offsets,
                        void* workspace, size_t workspace_bytes, cudaStream_t stream);
cudaError_t moe_grouped_gemm(DType dt, const void* x, int64_t ldx, const int32_t* sorted, int64_t gather_k,
                             const int32_t* offsets, int64_t E, const void* W, void* y, int64_t ldy, int64_t n,
                             int64_t N, int64_t K, cudaStream_t stream);
cudaError_t moe_activation(DType dt, const void* h, int64_t ldh, void* a, int64_t lda, int64_t n, int64_t I,
                           bool gated_silu, cudaStream_t stream);
cudaError_t moe_combine(DType dt, const void* y, int64_t ldy, const int32_t* pos, const float* weights, int64_t T,
                        int64_t k, int64_t H, void* out, int64_t ldo, bool accumulate, cudaStream_t stream);

// LoRA inside the expert GEMMs (lora.md §4): the adapter pool of an expert projection is stacked per (expert, slot),
// A [E*slots, max_r, in], B [E*slots, out, max_r], pool index expert*slots + slot. This builds lora.h segments over
// the expert-sorted rows grouped by (expert, slot), from the permutation and each token's adapter slot
// (token_slot [T], -1 = base model: such rows are in no segment):
//   perm_x [n]  token row (sorted[i] / k) of each LoRA row: the up projection's input row
//   perm_y [n]  expert-sorted row i: the up projection's output row and the down projection's input/output row
//   seg_indptr [E*slots + 1], seg_slot [E*slots] (= g): G = E*slots segments, T_lora bound = n.
// Up:   lora_shrink(x, {perm_x, n, indptr, seg_slot, G, rank, perm_y}) then lora_expand into h.
// Down: lora_shrink(a, {perm_y, n, indptr, seg_slot, G, rank}) then lora_expand into the sorted down output.
size_t moe_lora_segments_workspace_bytes(int64_t n);
cudaError_t moe_lora_segments(const int32_t* ids, const int32_t* sorted, int64_t n, int64_t k,
                              const int32_t* token_slot, int64_t E, int64_t slots, int32_t* perm_x, int32_t* perm_y,
                              int32_t* seg_indptr, int32_t* seg_slot, void* workspace, size_t workspace_bytes,
                              cudaStream_t stream);

}  // namespace hylora::cuda
