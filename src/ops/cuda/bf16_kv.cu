// Conversions around the bf16 KV cache (bf16_kv.h). Grid-stride loops over rows × columns, one element a thread.
#include <cuda_bf16.h>

#include "ops/cuda/bf16_kv.h"

namespace hylora::cuda {
namespace {
constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

__global__ void paged_store_bf16_k(const float* __restrict__ x, int64_t ldx, const int32_t* __restrict__ slots,
                                   int64_t T, int64_t W, __nv_bfloat16* __restrict__ cache) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < T * W;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / W, c = i % W;
    const int32_t slot = slots[t];
    if (slot >= 0) cache[static_cast<int64_t>(slot) * W + c] = __float2bfloat16_rn(x[t * ldx + c]);
  }
}

__global__ void bf16_to_f32_k(const __nv_bfloat16* __restrict__ x, int64_t ldx, float* __restrict__ y, int64_t ldy,
                              int64_t rows, int64_t cols) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < rows * cols;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    y[r * ldy + c] = __bfloat162float(x[r * ldx + c]);
  }
}
}  // namespace

cudaError_t paged_store_bf16(const float* x, int64_t ldx, const int32_t* kv_slots, int64_t T, int64_t W, void* cache,
                             cudaStream_t st) {
  if (T * W == 0) return cudaSuccess;
  paged_store_bf16_k<<<blocks_for(T * W), kThreads, 0, st>>>(x, ldx, kv_slots, T, W,
                                                              static_cast<__nv_bfloat16*>(cache));
  return cudaGetLastError();
}

cudaError_t bf16_to_f32(const void* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t cols,
                        cudaStream_t st) {
  if (rows * cols == 0) return cudaSuccess;
  bf16_to_f32_k<<<blocks_for(rows * cols), kThreads, 0, st>>>(static_cast<const __nv_bfloat16*>(x), ldx, y, ldy,
                                                              rows, cols);
  return cudaGetLastError();
}

}  // namespace hylora::cuda
