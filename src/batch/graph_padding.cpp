#include "batch/graph_padding.h"

#include <algorithm>

#include "core/error.h"

namespace hylora {

bool is_decode_step(const StepBatch& b) {
  if (b.num_seqs == 0 || b.num_tokens != b.num_seqs || b.num_logit_rows != b.num_tokens) return false;
  for (int64_t s = 0; s <= b.num_seqs; ++s)
    if (b.at(b.cu_seqlens)[s] != s) return false;
  return true;
}

int64_t page_bucket(int64_t n) {
  int64_t p = 1;
  while (p < n) p *= 2;
  return p;
}

GraphShape graph_shape_of(const StepBatch& b, int64_t lora_slots) {
  GraphShape g;
  g.rows = bucket_size(b.num_seqs);
  g.max_pages = page_bucket(b.max_pages);
  g.lora_segments = b.num_lora_rows > 0 ? lora_slots : 0;
  return g;
}

namespace {
// Copies the n first entries of `src` into `dst` (sized at the padded length), filling the rest with `fill`.
void copy_padded(const StepBatch& from, const StepBatch::Field& src, StepBatch& to, const StepBatch::Field& dst,
                 int32_t fill) {
  const int32_t* s = from.at(src);
  int32_t* d = to.at(dst);
  std::copy(s, s + src.size, d);
  std::fill(d + src.size, d + dst.size, fill);
}
}  // namespace

StepBatch pad_to_graph_shape(const StepBatch& b, const GraphShape& shape) {
  const int64_t S = b.num_seqs, B = shape.rows, P = shape.max_pages;
  HYLORA_CHECK(is_decode_step(b) && S <= B && b.max_pages <= P &&
                   (b.num_lora_rows == 0 || shape.lora_segments >= b.num_lora_segments) &&
                   b.num_logit_lora_segments <= b.num_lora_segments,
               "internal: a step of ", b.num_tokens, " rows, ", S, " sequences, ", b.max_pages, " pages, ",
               b.num_lora_segments, " adapter segments does not fit the graph bucket of ", B, " rows, ", P,
               " pages, ", shape.lora_segments, " segments");
  StepBatch p;
  p.num_tokens = p.padded_tokens = B;
  p.num_seqs = p.padded_seqs = B;
  p.max_pages = P;
  p.page_size = b.page_size;
  p.num_logit_rows = B;
  const int64_t G = shape.lora_segments, lora_rows = G > 0 ? B : 0;
  p.num_lora_rows = p.num_logit_lora_rows = lora_rows;
  p.num_lora_segments = p.num_logit_lora_segments = G;
  int64_t off = 0;
  for (StepBatch::Field* f : {&p.token_ids, &p.positions, &p.kv_slots, &p.row_slot, &p.cu_seqlens, &p.context_lens,
                              &p.state_slots, &p.page_table, &p.logit_rows, &p.lora_perm, &p.lora_indptr, &p.lora_slot,
                              &p.logit_lora_perm, &p.logit_lora_indptr, &p.logit_lora_slot}) {
    const int64_t n = f == &p.cu_seqlens                                        ? B + 1
                      : f == &p.page_table                                      ? B * P
                      : f == &p.lora_perm || f == &p.logit_lora_perm            ? lora_rows
                      : f == &p.lora_indptr || f == &p.logit_lora_indptr        ? G + 1
                      : f == &p.lora_slot || f == &p.logit_lora_slot            ? G
                                                                                : B;
    f->offset = off;
    f->size = n;
    off += n;
  }
  p.data.assign(off, 0);

  copy_padded(b, b.token_ids, p, p.token_ids, 0);
  copy_padded(b, b.positions, p, p.positions, 0);
  copy_padded(b, b.kv_slots, p, p.kv_slots, -1);
  copy_padded(b, b.row_slot, p, p.row_slot, -1);
  copy_padded(b, b.cu_seqlens, p, p.cu_seqlens, static_cast<int32_t>(S));  // padding sequences own no rows
  copy_padded(b, b.context_lens, p, p.context_lens, 0);
  copy_padded(b, b.state_slots, p, p.state_slots, -1);
  std::fill(p.at(p.page_table), p.at(p.page_table) + B * P, -1);
  for (int64_t s = 0; s < S; ++s)
    std::copy(b.at(b.page_table) + s * b.max_pages, b.at(b.page_table) + (s + 1) * b.max_pages,
              p.at(p.page_table) + s * P);
  // Logit rows: the live ones (0..S-1 in a decode step), then each padding row's own (computed, never returned).
  int32_t* lr = p.at(p.logit_rows);
  std::copy(b.at(b.logit_rows), b.at(b.logit_rows) + S, lr);
  for (int64_t r = S; r < B; ++r) lr[r] = static_cast<int32_t>(r);
  if (G > 0) {
    // Segments: the step's, then empty ones (indptr repeated) that no kernel reads from, on the step's first slot
    // (not slot 0, which may hold an adapter that no row of this step uses: see GraphShape::lora_targets).
    const int32_t k = static_cast<int32_t>(b.num_lora_rows);
    const int32_t fill_slot = b.num_lora_segments > 0 ? b.at(b.lora_slot)[0] : 0;
    copy_padded(b, b.lora_perm, p, p.lora_perm, 0);
    copy_padded(b, b.lora_indptr, p, p.lora_indptr, k);
    copy_padded(b, b.lora_slot, p, p.lora_slot, fill_slot);
    // A decode step's logit rows are its rows in order, so the logit segments index them the same way.
    const int32_t kl = static_cast<int32_t>(b.num_logit_lora_rows);
    copy_padded(b, b.logit_lora_perm, p, p.logit_lora_perm, 0);
    if (b.num_logit_lora_segments > 0) {
      copy_padded(b, b.logit_lora_indptr, p, p.logit_lora_indptr, kl);
    } else {
      std::fill(p.at(p.logit_lora_indptr), p.at(p.logit_lora_indptr) + G + 1, 0);
    }
    copy_padded(b, b.logit_lora_slot, p, p.logit_lora_slot, fill_slot);
  }
  return p;
}

}  // namespace hylora
