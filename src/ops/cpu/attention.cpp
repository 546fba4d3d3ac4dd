// CPU reference of paged causal attention (ops/attention.h): one (row, head) per task, exact softmax in two passes.
#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <omp.h>

#include "ops/cpu/paged_rows.h"

namespace hylora::ops::cpu {

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
  const PagedRows rows = resolve_paged_rows(ctx, layout, T);
  const int64_t max_ctx = rows.max_ctx;
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
        const int64_t s = rows.row_seq.i32()[t];
        const int64_t len = PagedRows::causal_keys(layout, s, t);
        const int64_t kvh = h / group;
        const float* qv = q.f32() + t * q.ld() + h * Dk;
        const int32_t* slots = rows.slots(s);
        for (int64_t j = 0; j < len; ++j) {
          const float* kv = kc + static_cast<int64_t>(slots[j]) * kstride + kvh * Dk;
          float acc = 0.0f;
          for (int64_t d = 0; d < Dk; ++d) acc += qv[d] * kv[d];
          sc[j] = acc * scale;
        }
        const float inv = softmax_numerators(sc, len);
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
