// CPU reference of paged causal attention (ops/attention.h): one (row, head) per task, exact softmax in two passes.
#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <omp.h>

namespace hylora::ops::cpu {

namespace {
// Cache slot (page·page_size + offset) of position j of sequence s.
int64_t cache_slot(const SeqLayout& l, int64_t s, int64_t j) {
  const int32_t page = l.page_table.i32()[s * l.max_pages + j / l.page_size];
  return static_cast<int64_t>(page) * l.page_size + j % l.page_size;
}
}  // namespace

void paged_store(ExecCtx&, const Tensor& x, const SeqLayout& layout, Tensor& cache) {
  const int64_t T = x.dim(0), W = x.dim(1);
  const int64_t slots = cache.dim(0) * cache.dim(1);
  HYLORA_CHECK(cache.ndim() >= 3 && cache.row_size() / cache.dim(1) == W && layout.kv_slots.numel() >= T,
               "internal: paged_store of ", shape_str(x.shape()), " into ", shape_str(cache.shape()));
  float* c = cache.f32();
  for (int64_t t = 0; t < T; ++t) {
    const int32_t slot = layout.kv_slots.i32()[t];
    if (slot < 0) continue;
    HYLORA_CHECK(slot < slots, "internal: KV slot ", slot, " outside the pool of ", slots);
    std::memcpy(c + static_cast<int64_t>(slot) * W, x.f32() + t * x.ld(), W * sizeof(float));
  }
}

void paged_attention(ExecCtx& ctx, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                     const SeqLayout& layout, int64_t nH, float scale, Tensor& o) {
  const int64_t T = q.dim(0), nKV = k_cache.dim(2), Dk = k_cache.dim(3), Dv = v_cache.dim(3);
  HYLORA_CHECK(nKV > 0 && nH % nKV == 0 && q.dim(1) == nH * Dk && o.dim(0) == T && o.dim(1) == nH * Dv,
               "internal: attention q ", shape_str(q.shape()), " K ", shape_str(k_cache.shape()), " o ",
               shape_str(o.shape()));
  const int64_t group = nH / nKV, kstride = nKV * Dk, vstride = nKV * Dv;
  // Row -> sequence, the longest context (to size per-thread score buffers from the scratch arena), and each
  // sequence's cache slot of every position, resolved through the page table once instead of per (row, head, key).
  Tensor row_seq = ctx.scratch.tensor({T}, DType::I32);
  Tensor seq_off = ctx.scratch.tensor({layout.num_seqs + 1}, DType::I32);
  int64_t max_ctx = 1, total_ctx = 0;
  for (int64_t s = 0; s < layout.num_seqs; ++s) {
    for (int32_t t = layout.cu_seqlens.i32()[s]; t < layout.cu_seqlens.i32()[s + 1]; ++t) row_seq.i32()[t] = s;
    max_ctx = std::max<int64_t>(max_ctx, layout.context_lens.i32()[s]);
    seq_off.i32()[s] = static_cast<int32_t>(total_ctx);
    total_ctx += layout.context_lens.i32()[s];
  }
  Tensor slot_of = ctx.scratch.tensor({std::max<int64_t>(total_ctx, 1)}, DType::I32);
  for (int64_t s = 0; s < layout.num_seqs; ++s)
    for (int64_t j = 0; j < layout.context_lens.i32()[s]; ++j)
      slot_of.i32()[seq_off.i32()[s] + j] = static_cast<int32_t>(cache_slot(layout, s, j));
  const int64_t work = T * nH * max_ctx;
  const int threads = work > 4096 ? omp_get_max_threads() : 1;  // a decode of a few heads: no thread team
  Tensor scores = ctx.scratch.tensor({threads, max_ctx});
  const float* kc = k_cache.f32();
  const float* vc = v_cache.f32();
#pragma omp parallel num_threads(threads)
  {
    float* sc = scores.f32() + omp_get_thread_num() * max_ctx;
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t h = 0; h < nH; ++h) {
        const int64_t s = row_seq.i32()[t];
        const int64_t n_new = layout.cu_seqlens.i32()[s + 1] - layout.cu_seqlens.i32()[s];
        const int64_t past = layout.context_lens.i32()[s] - n_new;
        const int64_t len = past + (t - layout.cu_seqlens.i32()[s]) + 1;  // causal: keys 0 .. own position
        const int64_t kvh = h / group;
        const float* qv = q.f32() + t * q.ld() + h * Dk;
        const int32_t* slots = slot_of.i32() + seq_off.i32()[s];
        float mx = -INFINITY;
        for (int64_t j = 0; j < len; ++j) {
          const float* kv = kc + static_cast<int64_t>(slots[j]) * kstride + kvh * Dk;
          float acc = 0.0f;
          for (int64_t d = 0; d < Dk; ++d) acc += qv[d] * kv[d];
          acc *= scale;
          sc[j] = acc;
          mx = std::max(mx, acc);
        }
        double sum = 0.0;
        for (int64_t j = 0; j < len; ++j) {
          sc[j] = std::exp(sc[j] - mx);
          sum += sc[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        float* out = o.f32() + t * o.ld() + h * Dv;
        std::fill(out, out + Dv, 0.0f);
        for (int64_t j = 0; j < len; ++j) {
          const float p = sc[j] * inv;
          const float* vv = vc + static_cast<int64_t>(slots[j]) * vstride + kvh * Dv;
          for (int64_t d = 0; d < Dv; ++d) out[d] += p * vv[d];
        }
      }
    }
  }
}

}  // namespace hylora::ops::cpu
