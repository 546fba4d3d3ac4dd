// Multi-LoRA shrink / expand over the step's slot segments (docs lora.md §3-4).
//
// Adapter buffers, one pair per (module, slice) k:  A_k [slots, max_r, in],  B_k [slots, out_size_k, max_r]
// (max-rank strided, zero past the adapter's rank, scaling folded into B). Step metadata (device, int32):
//   perm[T_lora]      logical LoRA row i -> physical row of x / y (rows grouped by slot; base rows appear nowhere)
//   seg_indptr[G+1]   logical rows of segment g are [seg_indptr[g], seg_indptr[g+1]) (empty segments allowed)
//   seg_slot[G]       adapter slot of segment g
//   rank[slots*n]     true rank of (slot, slice k) at rank[slot*n + k] (nullptr: max_r). Columns ≥ rank are skipped;
//                     the result is identical because they are zero.
// shrink: s[i, k, r] = Σ_j x[perm[i], j] · A_k[slot(i), r, j]              s fp32 [T_lora, n, max_r]
// expand: y[perm_y[i], out_off_k + o] += Σ_r s[i, k, r] · B_k[slot(i), o, r]   o < out_size_k  (perm_y = perm
//         unless given)
// Grids are sized from T_lora and G only (host-known bounds), so the calls are CUDA-graph safe when the metadata
// buffers are rewritten between replays.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/dtype.h"

namespace hylora::cuda {

constexpr int kLoraMaxSlices = 8;
constexpr int64_t kLoraMaxRank = 128;

struct LoraSlices {
  int n = 0;                                // number of slices, 1..kLoraMaxSlices
  const void* A[kLoraMaxSlices] = {};       // A_k [slots, max_r, in]
  const void* B[kLoraMaxSlices] = {};       // B_k [slots, out_size_k, max_r]
  int64_t out_off[kLoraMaxSlices] = {};     // first output column of slice k in y
  int64_t out_size[kLoraMaxSlices] = {};    // output columns of slice k
};

struct LoraSegments {
  const int32_t* perm = nullptr;        // [T_lora]
  int64_t T_lora = 0;
  const int32_t* seg_indptr = nullptr;  // [G+1]
  const int32_t* seg_slot = nullptr;    // [G]
  int64_t G = 0;
  const int32_t* rank = nullptr;        // [slots * n] or nullptr
  const int32_t* perm_y = nullptr;      // [T_lora] y rows for expand when they differ from x rows (nullptr: perm);
                                        // MoE up projections read token rows and write expert-sorted rows
};

enum class LoraPath : int { kAuto = 0, kSgmv = 1, kDecode = 2 };

// x [*, in] (ld ldx) of type dt; s fp32 [T_lora, sl.n, max_r] (fully written, zeros past the rank).
// kSgmv (prefill, lora_sgmv_mma.cu): tensor cores, a block per (64-row tile of a segment, slice, 64 ranks), K
// double-buffered with cp.async; fp32 in 3xTF32 (fp32-level accuracy), bf16 in bf16 mma (exact products). kDecode:
// a block per (4-row tile of a segment, slice, 4 rank columns) splitting `in` over 8 warps on CUDA cores (segments of
// a few rows, where a 64-row tile is mostly padding, and small batches, where kSgmv's serial walk over `in` is
// slower); kAuto picks kDecode when T_lora ≤ 16·G or T_lora · max_r < 2^17 (lora.cu says why).
cudaError_t lora_shrink(DType dt, const void* x, int64_t ldx, int64_t in, const LoraSlices& sl, int64_t max_r,
                        const LoraSegments& seg, float* s, LoraPath path, cudaStream_t stream);

// y [*, ldy] of type dt, updated in place on the rows perm[i] and the slice column ranges only.
// kSgmv (prefill, lora_sgmv_mma.cu): tensor cores (3xTF32; 2xTF32 for bf16 B), 64 rows × 128 columns per block, y
// read and written once in 16-byte vectors; kDecode: 16 rows × 128 columns per block, one output column per thread
// streaming its B row; kAuto picks kDecode when T_lora ≤ 16·G (as lora_shrink).
cudaError_t lora_expand(DType dt, const float* s, const LoraSlices& sl, int64_t max_r, const LoraSegments& seg,
                        void* y, int64_t ldy, cudaStream_t stream, LoraPath path = LoraPath::kAuto);

// Embedding LoRA shrink (a gather): s[i, 0, r] = A[slot(i), r, ids[perm[i]]]  with A [slots, max_r, vocab] of
// type dt, ids [*] int32 token ids of the physical rows, s fp32 [T_lora, 1, max_r]. Expand with lora_expand.
cudaError_t lora_embedding_shrink(DType dt, const int32_t* ids, const void* A, int64_t vocab, int64_t max_r,
                                  const LoraSegments& seg, float* s, cudaStream_t stream);

}  // namespace hylora::cuda
