#pragma once
// StepBatch: everything one forward step needs, as flat int32 arrays in one host buffer, so that the GPU backend
// uploads a step in one copy. Rows of all sequences are packed ("varlen"); a prefill, a prefill chunk and a decode
// step are the same thing: new tokens appended after a sequence's cached ones. Built once per step by the executor's
// step builder; read by the models through the tensor views of StepTensors.
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "ops/lora.h"
#include "ops/varlen.h"

namespace hylora {

struct StepBatch {
  // Sizes. Arrays are padded up to `padded_tokens` / `padded_seqs` (size buckets, so that a decode step can be
  // replayed as a captured graph): padding rows have kv_slot −1 and lora_slot −1 and belong to no sequence.
  int64_t num_tokens = 0;     // T
  int64_t num_seqs = 0;       // S
  int64_t padded_tokens = 0;  // ≥ T
  int64_t padded_seqs = 0;    // ≥ S
  int64_t max_pages = 0;      // page-table columns
  int64_t page_size = 0;
  int64_t num_logit_rows = 0;     // R
  int64_t num_lora_rows = 0;      // rows bound to an adapter
  int64_t num_lora_segments = 0;  // G: one per adapter slot used by the step
  int64_t num_logit_lora_rows = 0;
  int64_t num_logit_lora_segments = 0;

  // Offsets (in int32 elements) of each array inside `data`.
  struct Field {
    int64_t offset = 0, size = 0;
  };
  Field token_ids;       // [padded_tokens]
  Field positions;       // [padded_tokens]
  Field kv_slots;        // [padded_tokens] page·page_size + offset of each new row; −1 = padding
  Field row_slot;        // [padded_tokens] LoRA slot of each row; −1 = base model
  Field cu_seqlens;      // [padded_seqs + 1]
  Field context_lens;    // [padded_seqs] cached + new tokens after this step
  Field state_slots;     // [padded_seqs]
  Field page_table;      // [padded_seqs · max_pages] (−1 past a sequence's last page)
  Field logit_rows;      // [R] rows whose logits the step returns
  Field lora_perm;       // [num_lora_rows] adapter rows grouped by slot (ascending), row order kept inside
  Field lora_indptr;     // [G + 1]
  Field lora_slot;       // [G]
  Field logit_lora_perm;    // the same over the R logit rows (indices into logit_rows)
  Field logit_lora_indptr;
  Field logit_lora_slot;
  std::vector<int32_t> data;

  int32_t* at(const Field& f) { return data.data() + f.offset; }
  const int32_t* at(const Field& f) const { return data.data() + f.offset; }
};

// The step as the models and ops see it: views of a StepBatch's arrays on the compute device.
struct StepTensors {
  ops::SeqLayout layout;
  Tensor token_ids;          // [T]
  Tensor row_slot;           // [T]
  Tensor logit_rows;         // [R]
  ops::LoraSegments lora;        // rows of the step grouped by adapter slot (group = slot)
  ops::LoraSegments logit_lora;  // the logit rows grouped the same way (perm indexes the gathered rows)
  int64_t num_tokens() const { return layout.num_tokens; }
};

// Views of `b` on the host (the CPU backend reads the StepBatch in place). `b` must outlive the views.
StepTensors host_views(const StepBatch& b);
// The same views over `data`, b.data copied to the compute device ([b.data.size()] int32); segment slots are also
// kept on the host (LoraSegments::group_host).
StepTensors device_views(const StepBatch& b, const Tensor& data);

// Smallest bucket ≥ n: 1, 2, 4, 8, then multiples of 8 up to 256, then multiples of 64 (graph capture sizes).
int64_t bucket_size(int64_t n);

}  // namespace hylora
