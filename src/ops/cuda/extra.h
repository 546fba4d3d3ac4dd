// Small fp32 kernels behind the neutral ops that the tuned kernels of this folder do not cover one to one
// (pointwise ops over strided rows, gathers, RoPE with int32 positions, the naive expert GEMM, absorbed MLA, LoRA
// deltas). Plain host functions over device pointers and a cudaStream_t like the rest of hylora::cuda; every 2-D
// operand is [rows, cols] with a leading dimension. They favour being obviously right over speed: the hot paths
// (GEMMs, attention, recurrences, LoRA shrink/expand) use the tuned kernels.
#pragma once
#include <cuda_runtime.h>
#include <cstdint>

#include "ops/cuda/dtype.h"

namespace hylora::cuda::extra {

enum class Pointwise : int {
  kAdd,          // y += x
  kSigmoid,      // y = sigmoid(y)
  kMulSigmoid,   // y *= sigmoid(x)
  kRelu2,        // y = relu(y)²
  kCopy,         // y = x
};
// y [rows, cols] (ldy), x [rows, cols] (ldx; unused for the in-place kinds).
cudaError_t pointwise(Pointwise kind, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t cols,
                      cudaStream_t st);
// y[r] += s[r] · x[r].
cudaError_t add_row_scaled(const float* x, int64_t ldx, const float* s, float* y, int64_t ldy, int64_t rows,
                           int64_t cols, cudaStream_t st);
// y[r] += b.
cudaError_t add_bias(const float* b, float* y, int64_t ldy, int64_t rows, int64_t cols, cudaStream_t st);
// y[r, :I] = silu(x[r, :I]) · x[r, I:2I].
cudaError_t silu_mul_halves(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t I,
                            cudaStream_t st);
// x [rows, heads·2D] -> a, b [rows, heads·D].
cudaError_t split_head_halves(const float* x, int64_t ldx, float* a, int64_t lda, float* b, int64_t ldb, int64_t rows,
                              int64_t heads, int64_t D, cudaStream_t st);
// y[i] = x[idx[i] / div] for i < R (div = 1: a row gather; div = k: MoE pair -> token).
cudaError_t gather_rows(const float* x, int64_t ldx, const int32_t* idx, int64_t div, float* y, int64_t ldy, int64_t R,
                        int64_t cols, cudaStream_t st);
// beta = sigmoid(b), g = negA · softplus(a + dt_bias); b, a, g, beta [T, Hv] (ld).
cudaError_t gdn_gates(const float* b, int64_t ldb, const float* a, int64_t lda, const float* negA,
                      const float* dt_bias, float* g, int64_t ldg, float* beta, int64_t ldbeta, int64_t T, int64_t Hv,
                      cudaStream_t st);
// RoPE (ops/rope.h, ops/rope_interleave.h) on x [T, heads·D] (ld), int32 positions, inv_freq [rot/2] (device).
cudaError_t rope(float* x, int64_t ldx, int64_t T, int64_t heads, int64_t D, const int32_t* pos, const float* inv_freq,
                 int64_t rot, int64_t offset, float scaling, bool interleaved, cudaStream_t st);
// y[M, N] (ldy) (+)= x[M, K] (ldx) · W[K, N] (ldw). Naive; used for the small effective-weight products.
cudaError_t matmul_nn(const float* x, int64_t ldx, const float* W, int64_t ldw, float* y, int64_t ldy, int64_t M,
                      int64_t N, int64_t K, bool accumulate, cudaStream_t st);
// ys[i] = xs[i] · W[e(i)]ᵀ for the sorted rows of each expert (offsets [E+1]); W [E, N, K] of `w_dtype` (fp32 or
// bf16: the bf16 weights are read as they are, xs stays fp32, fp32 accumulation).
cudaError_t expert_gemm(const float* xs, int64_t ldx, DType w_dtype, const void* W, const int32_t* offsets, int64_t E,
                        float* ys, int64_t ldy, int64_t P, int64_t N, int64_t K, cudaStream_t st);
// out[t] = Σ_j w[t,j] · ys[pos[t·k+j]], summed in ascending pos order (the CPU reference's order).
cudaError_t moe_combine(const float* ys, int64_t ldy, const int32_t* pair, const float* w, int64_t T, int64_t k,
                        int64_t H, float* out, int64_t ldo, cudaStream_t st);
// cache[kv_slots[t]] = x[t] (rows with slot < 0 skipped); cache rows of W floats.
cudaError_t paged_store(const float* x, int64_t ldx, const int32_t* kv_slots, int64_t T, int64_t W, float* cache,
                        cudaStream_t st);
// Absorbed MLA (ops/mla.h): kvb[kvb_of_row[t]] device pointers. One block per (row, head).
cudaError_t mla_attention(const float* q, int64_t ldq, const float* cache, const int32_t* cu_seqlens,
                          const int32_t* context_lens, const int32_t* page_table, int64_t S, int64_t T,
                          int64_t max_pages, int64_t page_size, const float* const* kvb, const int32_t* kvb_of_row,
                          int64_t nH, int64_t Dn, int64_t Dr, int64_t Dv, int64_t Ckv, int64_t max_ctx, float scale,
                          float* o, int64_t ldo, cudaStream_t st);
// y[perm[i], off:off+n] += x[perm[i]] · deltaᵀ for i in [indptr[g], indptr[g+1]) (rows bound: R).
cudaError_t segment_dense_delta(const float* x, int64_t ldx, const int32_t* perm, const int32_t* indptr, int64_t g,
                                int64_t R, const float* delta, int64_t n, int64_t in, float* y, int64_t ldy,
                                int64_t off, cudaStream_t st);
// y[perm[i]] += delta[ids[perm[i]]] for the rows of segment g.
cudaError_t segment_embedding_delta(const int32_t* ids, const int32_t* perm, const int32_t* indptr, int64_t g,
                                    int64_t R, const float* delta, int64_t H, float* y, int64_t ldy, cudaStream_t st);
// out[0:N] = 0; out[perm[i]] = g + 1 for each segment g (G segments, R rows).
cudaError_t segment_index(const int32_t* perm, const int32_t* indptr, int64_t G, int64_t R, int32_t* out, int64_t N,
                          cudaStream_t st);
// y[n] = table[ids[n]] (table [V, H] of `table_dtype`, fp32 or bf16; y fp32).
cudaError_t embedding(DType table_dtype, const void* table, int64_t H, const int32_t* ids, int64_t n, float* y,
                      int64_t ldy, cudaStream_t st);
// y [rows, cols] (ldy, bf16) = x [rows, cols] (ldx, fp32) rounded to nearest even: the activation side of a GEMM
// with bf16 weights.
cudaError_t to_bf16(const float* x, int64_t ldx, void* y, int64_t ldy, int64_t rows, int64_t cols, cudaStream_t st);

}  // namespace hylora::cuda::extra
