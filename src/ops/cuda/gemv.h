// Decode GEMM with bf16 weights and a few fp32 rows: y[M, N] (ld ldy) (+)= bf16(x[M, K]) · W[N, K]ᵀ with x rounded
// to bf16 (as the cuBLASLt path rounds it before its bf16 GEMM), fp32 products and accumulation, fp32 y. M ≤
// kGemvMaxRows. Why not cuBLASLt: at decode a projection is a weight stream, and cuBLASLt's kernels for 1-8 rows
// reach 60-75% of the copy bandwidth on most decode shapes (and need x cast to bf16 in a separate kernel first).
// Here a warp streams two weight rows with 16-byte loads; when N is too small to fill the GPU that way, the eight
// warps of a block split K and meet in shared memory.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace hylora::cuda {

constexpr int64_t kGemvMaxRows = 8;

// True when gemv_bf16 takes these operands: 1 ≤ M ≤ kGemvMaxRows, K a multiple of 8, W rows and x rows 16-byte
// aligned (ldw % 8 == 0, ldx % 4 == 0, aligned base pointers).
bool gemv_bf16_fits(const float* x, int64_t ldx, const void* W, int64_t ldw, int64_t M, int64_t K);
// W is __nv_bfloat16 [N, K] (ld ldw). Returns cudaErrorInvalidValue when !gemv_bf16_fits.
cudaError_t gemv_bf16(const float* x, int64_t ldx, const void* W, int64_t ldw, float* y, int64_t ldy, int64_t M,
                      int64_t N, int64_t K, bool accumulate, cudaStream_t stream);

}  // namespace hylora::cuda
