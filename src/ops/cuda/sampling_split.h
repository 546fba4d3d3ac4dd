// The sampler's split path for few rows (sampling.h's contract). One block of 1024 threads per row leaves an H200
// idle at decode batch 1: the row (152k-248k logits) is streamed and scored by one SM, ~0.1 ms for a temperature
// draw and as much again for the log-probability. Here each row is cut into S chunks, one 256-thread block each,
// and up to three passes leave per-chunk partials in a device workspace (SplitRow, sampling_device.cuh):
//   pass 1: greedy → the chunk's argmax; plain draw → its Gumbel-max; otherwise its max of logit/temperature;
//           with log-probabilities, also the chunk's raw max and Σ exp(raw − max).
//   pass 2: min-p draw → the Gumbel-max over the chunk's tokens above the min-p cut (row max from pass 1);
//           top-k / top-p → round-0 probe statistics of the chunk (counts or fixed-point masses).
//   pass 3: top-k / top-p → from the summed statistics, the same cut as the one-block path's round 0: resolved →
//           the chunk's Gumbel-max over the kept tokens; else the chunk's candidates appended to the row's list
//           (unless top-k's count says they overflow it).
// sample_kernel (sampling.cu) then finishes each row in one block: the best chunk score, or the sorted list, or
// (list overflow: flat rows) the whole one-block method. Every combine is a max, an argmax with the lowest-index
// tie rule or an integer sum, so the tokens are the one-block path's, bit for bit.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/dtype.h"
#include "ops/cuda/sampling.h"

namespace hylora::cuda::sampling_detail {

// Chunks per row for R rows of V logits: 1 (no split) once R rows of one block each fill the GPU (R > 64) or rows
// are short (chunks keep ≥ 2048 logits); else enough blocks to fill every SM once (8 blocks of 256 threads each), at
// most 128 a row.
int split_count(int64_t R, int64_t V);

// Passes 1-3 over R rows in S chunks each; workspace: R SplitRow records (16-byte aligned).
cudaError_t split_passes(DType dt, const void* logits, int64_t ld, int64_t V, const int32_t* rows, int64_t R,
                         const SamplingParams* params, void* workspace, int S, bool want_lse, cudaStream_t stream);

}  // namespace hylora::cuda::sampling_detail
