#pragma once
// The step's sequence layout as the batched ops see it. Rows of all sequences are packed ("varlen"): sequence s owns
// new rows [cu_seqlens[s], cu_seqlens[s+1]). Every tensor is int32 on the op's device; the executor builds them once
// per step from the StepBatch (one upload on the GPU).
#include <cstdint>

#include "core/tensor.h"

namespace hylora::ops {

struct SeqLayout {
  int64_t num_seqs = 0;    // S
  int64_t num_tokens = 0;  // T (new rows)
  int64_t page_size = 0;   // tokens per KV page
  int64_t max_pages = 0;   // page-table columns
  Tensor positions;        // [T] absolute position of each row in its sequence
  Tensor cu_seqlens;       // [S+1]
  Tensor context_lens;     // [S] tokens in the cache after this step, new ones included
  Tensor state_slots;      // [S] recurrent state slot of each sequence (GDN / Mamba2 pools)
  Tensor page_table;       // [S, max_pages] KV page ids of each sequence, in order (-1 past its last page)
  Tensor kv_slots;         // [T] cache slot page·page_size + offset of each new row; -1 = padding, skipped
};

}  // namespace hylora::ops
