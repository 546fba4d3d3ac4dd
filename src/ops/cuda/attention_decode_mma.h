// Split-KV paged attention decode on the tensor cores, for bf16 K/V caches (internal to attention.cu's
// attention_decode; math and layouts in attention.h). Same block decomposition as attention_decode.h's kernel (row
// tile of a sequence × query heads of one KV head × key split; every K/V byte of a split read once for the whole
// GQA group), but the scores and P·V are bf16 mma.sync instead of per-lane fp32 dot products: the old kernel spent
// ~NQ·(D + Dv) scalar FMAs per lane and key tile, which made it compute-bound (59 µs per layer at batch 1, ~1 TB/s at
// batch 64 on an H200 for Qwen3.5 shapes). Here a 16-key tile costs a warp D/16 + 2·Dv/16 mma, so the kernel is left
// with what a decode step is bound by: bytes of K/V in flight. How and why in attention_decode_mma.cu.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/attention.h"

namespace hylora::cuda {

// Whether attention_decode_mma handles these shapes: bf16, D a multiple of 32 up to 256, Dv ∈ {64, 128, 256}, 16-byte
// aligned pools and V slot stride (cp.async).
bool attention_decode_mma_ok(DType dt, const PagedAttention& p);

// Key splits for this kernel at these shapes: a function of shapes, max_context and the GPU only (host-known, fixed for
// a CUDA-graph bucket). Picks the split count whose grid fills the GPU's waves best (≤ 32 splits, ≥ ~32 keys a split).
int64_t attention_decode_mma_splits(const PagedAttention& p, int64_t max_context);

// nsplit key ranges per sequence, derived on the device from context_lens: split z of sequence s takes keys
// [z·c_s, (z+1)·c_s), c_s = ceil(context_lens[s] / nsplit), so every split of every sequence has work whatever the
// page-table width (the host's chunk is not used). nsplit == 1: writes o directly (ws unused, may be null). nsplit > 1:
// partial outputs and log2-sum-exp to ws ([T, nH, nsplit, Dv] then [T, nH, nsplit] floats, as in
// attention_decode_workspace_floats), then a merge kernel.
cudaError_t attention_decode_mma(const PagedAttention& p, int64_t nsplit, float* ws, cudaStream_t stream);

}  // namespace hylora::cuda
