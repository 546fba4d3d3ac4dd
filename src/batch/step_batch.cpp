#include "batch/step_batch.h"

namespace hylora {

namespace {
// The views alias `data` (the batch's vector on the host, or its one-copy upload on the device); the executor keeps
// both alive for the whole step.
Tensor view(const StepBatch& b, const Tensor& data, const StepBatch::Field& f, Shape shape) {
  if (data.defined()) return data.rows(f.offset, f.offset + f.size).reshape(std::move(shape));
  return Tensor::view_of(const_cast<int32_t*>(b.at(f)), std::move(shape), DType::I32, nullptr);
}
ops::LoraSegments segments(const StepBatch& b, const Tensor& data, const StepBatch::Field& perm, const StepBatch::Field& indptr,
                           const StepBatch::Field& slot, int64_t rows, int64_t g) {
  ops::LoraSegments s;
  s.num_rows = rows;
  s.num_segments = g;
  s.perm = view(b, data, perm, {rows});
  s.indptr = view(b, data, indptr, {g + 1});
  s.group = view(b, data, slot, {g});
  s.group_host.assign(b.at(slot), b.at(slot) + g);
  return s;
}
StepTensors views(const StepBatch& b, const Tensor& data) {
  StepTensors t;
  ops::SeqLayout& l = t.layout;
  l.num_seqs = b.num_seqs;
  l.num_tokens = b.num_tokens;
  l.page_size = b.page_size;
  l.max_pages = b.max_pages;
  l.positions = view(b, data, b.positions, {b.num_tokens});
  l.cu_seqlens = view(b, data, b.cu_seqlens, {b.num_seqs + 1});
  l.context_lens = view(b, data, b.context_lens, {b.num_seqs});
  l.state_slots = view(b, data, b.state_slots, {b.num_seqs});
  l.page_table = view(b, data, b.page_table, {b.num_seqs, b.max_pages});
  l.kv_slots = view(b, data, b.kv_slots, {b.num_tokens});
  t.token_ids = view(b, data, b.token_ids, {b.num_tokens});
  t.row_slot = view(b, data, b.row_slot, {b.num_tokens});
  t.logit_rows = view(b, data, b.logit_rows, {b.num_logit_rows});
  t.lora = segments(b, data, b.lora_perm, b.lora_indptr, b.lora_slot, b.num_lora_rows, b.num_lora_segments);
  t.logit_lora = segments(b, data, b.logit_lora_perm, b.logit_lora_indptr, b.logit_lora_slot, b.num_logit_lora_rows,
                          b.num_logit_lora_segments);
  return t;
}

}  // namespace

StepTensors host_views(const StepBatch& b) { return views(b, Tensor()); }

StepTensors device_views(const StepBatch& b, const Tensor& data) {
  HYLORA_CHECK(data.numel() == static_cast<int64_t>(b.data.size()) && data.dtype() == DType::I32,
               "internal: step upload of ", shape_str(data.shape()), " for ", b.data.size(), " entries");
  return views(b, data);
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
