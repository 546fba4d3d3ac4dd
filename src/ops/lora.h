#pragma once
// Multi-LoRA shrink/expand (lora.md §3–4): the two ops every LoRA'd projection goes through, whatever its number of
// slices. Rows of a step are grouped by adapter slot into segments; base-model rows belong to no segment and are
// never touched. The CUDA backend implements the same ops over the same buffers.
//
//   shrink:  s[i, k, :] = x[perm[i]] A_{slot(i), k}ᵀ              s [n_lora_rows, slices, max_r], fp32
//   expand:  y[perm[i], off_k : off_k + size_k] += s[i, k, :] B_{slot(i), k}ᵀ
//
// A and B are the pool's max-rank-strided, zero-padded slot buffers (A [max_r, in], B [out_slice, max_r]); the
// scaling is already folded into B. Columns past an adapter's rank are zero in both, so computing over all max_r
// columns gives the same result as skipping them.
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace hylora::ops {

// Rows of one step (or of one expert's token list) grouped by slot.
struct LoraSegments {
  std::vector<int64_t> perm;       // [n_lora_rows] logical row i -> physical row of x / y, grouped by segment
  std::vector<int64_t> seg_begin;  // [n_seg + 1] segment s owns logical rows [seg_begin[s], seg_begin[s+1])
  std::vector<int32_t> seg_slot;   // [n_seg] slot of each segment
  int64_t num_rows() const { return static_cast<int64_t>(perm.size()); }
  int64_t num_segments() const { return static_cast<int64_t>(seg_slot.size()); }
};

// One LoRA slice of a projection, as the ops see it: per slot, the slot's buffers (null = this slot's adapter does
// not touch the slice, which contributes nothing).
struct LoraSliceBuffers {
  int64_t out_offset = 0;          // first output column of the slice in y
  int64_t out_size = 0;            // columns
  std::vector<const float*> A;     // [slots] each [max_r, in] (embedding: [max_r, vocab]) or null
  std::vector<const float*> B;     // [slots] each [out_size, max_r] or null
};

// s [n_lora_rows, slices, max_r] (fp32) = x[perm] Aᵀ per slice and segment. x [N, in].
Tensor lora_shrink(const Tensor& x, const LoraSegments& seg, const std::vector<LoraSliceBuffers>& slices,
                   int64_t max_r);

// Embedding shrink: s[i, k, :] = A_{slot(i), k}[:, ids[perm[i]]] (a gather, A [max_r, vocab]). ids [N].
Tensor lora_shrink_embedding(const std::vector<int32_t>& ids, int64_t vocab, const LoraSegments& seg,
                             const std::vector<LoraSliceBuffers>& slices, int64_t max_r);

// y[perm[i], off_k + c] += Σ_j s[i, k, j] B_{slot(i), k}[c, j]. s from a shrink over the same segments; y [N, out].
void lora_expand(const Tensor& s, const LoraSegments& seg, const std::vector<LoraSliceBuffers>& slices,
                 int64_t max_r, Tensor& y);

}  // namespace hylora::ops
