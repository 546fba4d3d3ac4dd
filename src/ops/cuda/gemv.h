// Decode GEMM with bf16 weights and a few fp32 rows: y[M, N] (ld ldy) (+)= bf16(x[M, K]) · W[N, K]ᵀ with x rounded
// to bf16 (as the cuBLASLt path rounds it before its bf16 GEMM), fp32 products and accumulation, fp32 y. M ≤
// kGemvMaxRows. Why not cuBLASLt: at decode a projection is a weight stream, and for one row the cast kernel plus
// cuBLASLt's GEMM reach 1.7-3.1 TB/s on Qwen3.5-4B's matrices of ≥ 4096 × 2560 where this kernel reaches 2.2-3.9
// TB/s (H200, DRAM-cold weights, `hylora_cuda_checks --bench`; 1024 × 2560: 18.3 → 4.4 µs, lm_head 414 → 322 µs). Here a warp
// streams two weight rows with 16-byte loads; when N is too small to fill the GPU that way, the eight warps of a block
// split K and meet in shared memory. Every row of x is re-read from L1 per weight vector, so with 8 rows the kernel is
// L1-bound (0.8-1.3 TB/s, below cuBLASLt's 1.9-3.2): the engine uses it for one row only (kGemvEngineRows).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace hylora::cuda {

constexpr int64_t kGemvMaxRows = 8;
// Rows up to which matmul_nt (ops/cuda/backend.cpp) takes this kernel: measured faster than cast + cuBLASLt at 1 row,
// slower at 8; 2-4 rows not measured yet, so they stay on cuBLASLt.
constexpr int64_t kGemvEngineRows = 1;

// True when gemv_bf16 takes these operands: 1 ≤ M ≤ kGemvMaxRows, K a multiple of 8, W rows and x rows 16-byte
// aligned (ldw % 8 == 0, ldx % 4 == 0, aligned base pointers).
bool gemv_bf16_fits(const float* x, int64_t ldx, const void* W, int64_t ldw, int64_t M, int64_t K);
// W is __nv_bfloat16 [N, K] (ld ldw). Returns cudaErrorInvalidValue when !gemv_bf16_fits.
cudaError_t gemv_bf16(const float* x, int64_t ldx, const void* W, int64_t ldw, float* y, int64_t ldy, int64_t M,
                      int64_t N, int64_t K, bool accumulate, cudaStream_t stream);

// The same kernel over fp32 weights at one row: y[1, N] (+)= x[1, K] · W[N, K]ᵀ, fp32 throughout (no rounding of x).
// Why: the weights the bf16 mode keeps in fp32 (MoE routers, shared-expert gates) and every weight of the float32
// mode otherwise go through cuBLASLt's fp32 GEMM, which at one row splits K and adds a reduction kernel: 17 µs per
// router [256, 2048] of Qwen3.5-35B-A3B on an H200 for 2 MB of weights (ncu, decode batch 1).
// Fits: M == 1, K a multiple of 8, 16-byte aligned rows (ldw % 4 == 0, ldx % 4 == 0, aligned bases).
bool gemv_f32_fits(const float* x, int64_t ldx, const float* W, int64_t ldw, int64_t M, int64_t K);
cudaError_t gemv_f32(const float* x, int64_t ldx, const float* W, int64_t ldw, float* y, int64_t ldy, int64_t M,
                     int64_t N, int64_t K, bool accumulate, cudaStream_t stream);

}  // namespace hylora::cuda
