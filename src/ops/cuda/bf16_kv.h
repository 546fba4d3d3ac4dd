#pragma once
// The bfloat16 KV cache of `--dtype bfloat16` on the GPU: the engine's activations stay float32, the cache pages
// hold K and V rounded to bf16 (half the bytes a decode step reads, and what HF's bf16 attention sees), and
// attention runs on bf16 q/K/V with fp32 accumulation (the WMMA prefill kernel, the split-KV decode kernel).
// These are the two conversions around it.
#include <cuda_runtime.h>

#include <cstdint>

namespace hylora::cuda {

// cache[kv_slots[t], 0:W] = bf16(x[t, 0:W]) for t < T (x fp32 [T, W] with ld ldx; cache bf16 [slots, W]);
// kv_slots[t] < 0 = padding row, skipped.
cudaError_t paged_store_bf16(const float* x, int64_t ldx, const int32_t* kv_slots, int64_t T, int64_t W, void* cache,
                             cudaStream_t st);
// y [rows, cols] (ldy, fp32) = x [rows, cols] (ldx, bf16), exact.
cudaError_t bf16_to_f32(const void* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t cols,
                        cudaStream_t st);

}  // namespace hylora::cuda
