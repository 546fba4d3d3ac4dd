#pragma once
// What both CPU attention references (paged attention, absorbed MLA) need before their (row, head) loops: which
// sequence each packed row belongs to, how many keys a row sees, and the cache slot of every cached position —
// resolved through the page table once per step instead of once per (row, head, key).
#include <algorithm>
#include <cmath>

#include "core/exec_ctx.h"
#include "ops/varlen.h"

namespace hylora::ops::cpu {

struct PagedRows {
  Tensor row_seq;   // [T] int32: sequence of each packed row
  Tensor seq_off;   // [S + 1] int32: first entry of sequence s in slot_of
  Tensor slot_of;   // [Σ context_lens] int32: cache slot (page·page_size + offset) of position j of sequence s
  int64_t max_ctx = 1;  // longest context in the step (sizes per-thread score buffers)

  // Cache slots of sequence s, position 0 first.
  const int32_t* slots(int64_t s) const { return slot_of.i32() + seq_off.i32()[s]; }
  // Keys row t of sequence s attends to (causal: every cached key up to and including its own position).
  static int64_t causal_keys(const SeqLayout& l, int64_t s, int64_t t) {
    const int64_t n_new = l.cu_seqlens.i32()[s + 1] - l.cu_seqlens.i32()[s];
    const int64_t past = l.context_lens.i32()[s] - n_new;
    return past + (t - l.cu_seqlens.i32()[s]) + 1;
  }
};

// Temporaries come from ctx.scratch (valid until the caller's step ends).
inline PagedRows resolve_paged_rows(ExecCtx& ctx, const SeqLayout& l, int64_t T) {
  PagedRows r;
  r.row_seq = ctx.scratch.tensor({T}, DType::I32);
  r.seq_off = ctx.scratch.tensor({l.num_seqs + 1}, DType::I32);
  int64_t total = 0;
  for (int64_t s = 0; s < l.num_seqs; ++s) {
    for (int32_t t = l.cu_seqlens.i32()[s]; t < l.cu_seqlens.i32()[s + 1]; ++t) r.row_seq.i32()[t] = s;
    r.max_ctx = std::max<int64_t>(r.max_ctx, l.context_lens.i32()[s]);
    r.seq_off.i32()[s] = static_cast<int32_t>(total);
    total += l.context_lens.i32()[s];
  }
  r.seq_off.i32()[l.num_seqs] = static_cast<int32_t>(total);
  r.slot_of = ctx.scratch.tensor({std::max<int64_t>(total, 1)}, DType::I32);
  for (int64_t s = 0; s < l.num_seqs; ++s)
    for (int64_t j = 0; j < l.context_lens.i32()[s]; ++j) {
      const int32_t page = l.page_table.i32()[s * l.max_pages + j / l.page_size];
      r.slot_of.i32()[r.seq_off.i32()[s] + j] = static_cast<int32_t>(static_cast<int64_t>(page) * l.page_size +
                                                                      j % l.page_size);
    }
  return r;
}

// sc[0..len) ← exp(sc − max) in place; returns 1 / Σ (the sum in double: contexts run to 100k+ keys).
inline float softmax_numerators(float* sc, int64_t len) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < len; ++j) mx = std::max(mx, sc[j]);
  double sum = 0.0;
  for (int64_t j = 0; j < len; ++j) {
    sc[j] = std::exp(sc[j] - mx);
    sum += sc[j];
  }
  return static_cast<float>(1.0 / sum);
}

}  // namespace hylora::ops::cpu
