#pragma once
// Multi-LoRA shrink/expand (docs/lora.md §3–4): the two ops every LoRA'd projection goes through, whatever its number
// of slices. Rows are grouped into segments; each segment reads one *group* of the stacked slot buffers (for a plain
// projection group = adapter slot; for MoE experts group = slot · E + expert). Rows in no segment (base-model rows)
// are never touched.
//
//   shrink:  s[i, k, :] = x[perm[i]] · A_k[group(i)]ᵀ                       s [rows, slices, max_r], fp32
//   expand:  y[perm[i], off_k : off_k + size_k] += s[i, k, :] · B_k[group(i)]ᵀ
//
// A_k [groups, max_r, in] and B_k [groups, size_k, max_r] are max-rank strided and zero past the adapter's rank,
// with the scaling folded into B. `rank[group]` (int32) lets kernels skip the zero tail and untouched slices
// (rank 0); the result is the same when they don't.
#include <cstdint>
#include <vector>

#include "core/exec_ctx.h"

namespace hylora::ops {

struct LoraSegments {
  int64_t num_rows = 0;      // rows in segments
  int64_t num_segments = 0;  // G
  Tensor perm;               // [num_rows] logical row -> physical row of x / y, grouped by segment
  Tensor indptr;             // [G + 1] segment g owns logical rows [indptr[g], indptr[g+1])
  Tensor group;              // [G] buffer group of each segment
  // Host copy of `group` (empty where nobody needs it, e.g. MoE segments): lets callers pick per-segment host-side
  // objects (modules_to_save deltas, effective kv_b weights) without reading device memory.
  std::vector<int32_t> group_host;
  bool empty() const { return num_rows == 0; }
};

struct LoraSliceBuffers {
  int64_t out_offset = 0;  // first output column of the slice in y
  int64_t out_size = 0;    // its columns
  Tensor A;                // [groups, max_r, in]   (embedding: [groups, max_r, vocab])
  Tensor B;                // [groups, out_size, max_r]
  Tensor rank;             // [groups] int32 true rank (0 = this group does not touch the slice)
};

// s [num_rows, slices, max_r] = x[perm] · Aᵀ per slice and segment. x [N, in].
void lora_shrink(ExecCtx& ctx, const Tensor& x, const LoraSegments& seg, const std::vector<const LoraSliceBuffers*>& slices,
                 Tensor& s);
// Embedding shrink: s[i, k, :] = A_k[group(i)][:, ids[perm[i]]] (a gather; A [groups, max_r, vocab]). ids [N] int32.
void lora_shrink_embedding(ExecCtx& ctx, const Tensor& ids, const LoraSegments& seg,
                           const std::vector<const LoraSliceBuffers*>& slices, Tensor& s);
// y[perm[i], off_k + c] += Σ_j s[i, k, j] · B_k[group(i)][c, j]. y [N, out].
// modules_to_save replacement of one segment: y[perm[i], off : off + n] += x[perm[i]] · deltaᵀ for the logical rows i
// of segment g (delta [n, in], x [N, in], y [N, out]).
void lora_segment_dense_delta(ExecCtx& ctx, const Tensor& x, const LoraSegments& seg, int64_t g, const Tensor& delta,
                              int64_t out_offset, Tensor& y);
// A replaced embedding table of one segment: y[perm[i]] += delta[ids[perm[i]]] for the rows i of segment g
// (delta [V, H], ids [N] int32, y [N, H]).
void lora_segment_embedding_delta(ExecCtx& ctx, const Tensor& ids, const LoraSegments& seg, int64_t g,
                                  const Tensor& delta, Tensor& y);
// out[r] = 0 for every row r, then out[perm[i]] = g + 1 for the rows i of each segment g (out [N] int32): which of
// [base, segment 0, segment 1, ...] a row uses.
void segment_index(ExecCtx& ctx, const LoraSegments& seg, Tensor& out);
void lora_expand(ExecCtx& ctx, const Tensor& s, const LoraSegments& seg, const std::vector<const LoraSliceBuffers*>& slices,
                 Tensor& y);

}  // namespace hylora::ops
