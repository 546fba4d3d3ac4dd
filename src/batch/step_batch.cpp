#include "batch/step_batch.h"

namespace hylora {

namespace {
Tensor view(const StepBatch& b, const StepBatch::Field& f, Shape shape) {
  // The views alias the batch's vector; the executor keeps the batch alive for the whole step.
  return Tensor::view_of(const_cast<int32_t*>(b.at(f)), std::move(shape), DType::I32, nullptr);
}
ops::LoraSegments segments(const StepBatch& b, const StepBatch::Field& perm, const StepBatch::Field& indptr,
                           const StepBatch::Field& slot, int64_t rows, int64_t g) {
  ops::LoraSegments s;
  s.num_rows = rows;
  s.num_segments = g;
  s.perm = view(b, perm, {rows});
  s.indptr = view(b, indptr, {g + 1});
  s.group = view(b, slot, {g});
  return s;
}
}  // namespace

StepTensors host_views(const StepBatch& b) {
  StepTensors t;
  ops::SeqLayout& l = t.layout;
  l.num_seqs = b.num_seqs;
  l.num_tokens = b.num_tokens;
  l.page_size = b.page_size;
  l.max_pages = b.max_pages;
  l.positions = view(b, b.positions, {b.num_tokens});
  l.cu_seqlens = view(b, b.cu_seqlens, {b.num_seqs + 1});
  l.context_lens = view(b, b.context_lens, {b.num_seqs});
  l.state_slots = view(b, b.state_slots, {b.num_seqs});
  l.page_table = view(b, b.page_table, {b.num_seqs, b.max_pages});
  l.kv_slots = view(b, b.kv_slots, {b.num_tokens});
  t.token_ids = view(b, b.token_ids, {b.num_tokens});
  t.row_slot = view(b, b.row_slot, {b.num_tokens});
  t.logit_rows = view(b, b.logit_rows, {b.num_logit_rows});
  t.lora = segments(b, b.lora_perm, b.lora_indptr, b.lora_slot, b.num_lora_rows, b.num_lora_segments);
  t.logit_lora = segments(b, b.logit_lora_perm, b.logit_lora_indptr, b.logit_lora_slot, b.num_logit_lora_rows,
                          b.num_logit_lora_segments);
  return t;
}

int64_t bucket_size(int64_t n) {
  if (n <= 1) return 1;
  if (n <= 8) {
    int64_t p = 1;
    while (p < n) p *= 2;
    return p;
  }
  if (n <= 256) return (n + 7) / 8 * 8;
  return (n + 63) / 64 * 64;
}

}  // namespace hylora
