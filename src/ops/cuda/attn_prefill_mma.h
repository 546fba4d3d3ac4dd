// bf16 paged-attention prefill on mma.sync tensor cores (FlashAttention-2 style), used by attention_prefill
// (attention.h has the math, shapes and page layout). Internal header: attention.cu dispatches to it; the GPU checks
// call both kernels directly to compare them and time them.
#pragma once
#include <cuda_runtime.h>

#include "ops/cuda/attention.h"

namespace hylora::cuda {

// True when attention_prefill_mma handles p: bf16 q/K/V/o, (D, Dv) ∈ {(64,64), (96,96), (128,128), (192,192),
// (256,256), (192,128)}, ldq, v_token_stride multiples of 8, q / pools 16-byte aligned, o 4-byte aligned, ldo even.
bool attention_prefill_mma_supported(const PagedAttention& p);
// Varlen causal prefill (same contract as attention_prefill); cudaErrorNotSupported when !supported(p).
// keys_per_tile: 0 = the default per head size (64; 32 for D 256); 32 selects 32-key tiles for D 64 / 128 too (a
// tuning variant the checks time against the default).
cudaError_t attention_prefill_mma(const PagedAttention& p, cudaStream_t stream, int keys_per_tile = 0);
// The previous bf16 prefill (WMMA, S/O through shared memory), kept for the checks' speed comparison and as the
// fallback for D, Dv multiples of 16 outside the set above. cudaErrorNotSupported unless bf16-able (D, Dv ≤ 256).
cudaError_t attention_prefill_wmma(const PagedAttention& p, cudaStream_t stream);

}  // namespace hylora::cuda
