// Split-KV paged attention for decode steps (internal to attention.cu's attention_decode; math and layouts in
// attention.h). One block per (row tile of a sequence, group of query heads sharing one KV head, key split): every
// K/V byte of the split is read once for all query heads of the GQA group (and all rows of the tile).
// attention_decode takes this kernel for fp32 caches (and shapes the tensor-core kernel of attention_decode_mma.h
// does not take); bf16 caches go to that one. Its per-lane fp32 dot products (NQ·(D + Dv) FMAs a lane per 16-key
// tile) and 2–6 warps per SM make it compute-latency bound: on an H200, Qwen3.5-4B shapes (D 256), 47 µs at batch 1
// and 1.0 TB/s of K/V at batch 64 in bf16 (Nsight Compute: 2% / 22% of DRAM bandwidth).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/attention.h"

namespace hylora::cuda {

// Whether attention_decode_split handles these shapes: D a multiple of 32 up to 256, Dv ∈ {64, 128, 256}, 16-byte
// aligned pools and V slot stride (cp.async). Other shapes keep the generic kernel.
bool attention_decode_split_ok(DType dt, const PagedAttention& p);

// Keys of every sequence cut into nsplit chunks of `chunk` tokens (split z: keys [z·chunk, (z+1)·chunk)).
// nsplit == 1: writes o directly (workspace unused, may be null). nsplit > 1: partial outputs and log2-sum-exp to
// `ws` (attention_decode_workspace_floats floats: [T, nH, nsplit, Dv] then [T, nH, nsplit]), then a combine kernel.
cudaError_t attention_decode_split(DType dt, const PagedAttention& p, int64_t nsplit, int64_t chunk, float* ws,
                                   cudaStream_t stream);

}  // namespace hylora::cuda
