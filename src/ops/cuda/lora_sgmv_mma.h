// The SGMV (prefill) path of lora_shrink / lora_expand on mma.sync tensor cores (lora_sgmv_mma.cu). Same contract
// as lora.h; called by lora.cu for LoraPath::kSgmv (and kAuto above the decode crossover). Internal to ops/cuda.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/lora.h"

namespace hylora::cuda {

// True rank of (slot, slice k), clamped to [0, max_r] (max_r when no rank metadata). Device code of lora*.cu.
__device__ __forceinline__ int lora_slice_rank(const LoraSegments& seg, int slot, int n, int k, int max_r) {
  if (!seg.rank) return max_r;
  const int r = seg.rank[slot * n + k];
  return r < 0 ? 0 : (r > max_r ? max_r : r);
}

// s[i, k, r] = Σ_j x[perm[i], j] · A_k[slot(i), r, j] for every (i, k, r < max_r) (zeros past the rank).
cudaError_t lora_shrink_sgmv_mma(DType dt, const void* x, int64_t ldx, int64_t in, const LoraSlices& sl, int max_r,
                                 const LoraSegments& seg, float* s, cudaStream_t stream);

// y[perm_y[i], out_off_k + o] += Σ_r s[i, k, r] · B_k[slot(i), o, r]; max_out = max_k out_size[k] (> 0).
cudaError_t lora_expand_sgmv_mma(DType dt, const float* s, const LoraSlices& sl, int max_r, const LoraSegments& seg,
                                 void* y, int64_t ldy, int64_t max_out, cudaStream_t stream);

}  // namespace hylora::cuda
