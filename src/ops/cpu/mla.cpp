// CPU reference of weight-absorbed MLA over the latent cache (ops/mla.h). Per (row, head): the latent query
// q_lat = W_k,hᵀ q_n, scores against every cached latent + rope key, the softmax-weighted latent ō, and o = W_v,h ō.
#include "ops/mla.h"

#include <algorithm>
#include <cmath>

#include <omp.h>

#include "ops/cpu/paged_rows.h"

namespace hylora::ops::cpu {

void mla_attention(ExecCtx& ctx, const Tensor& q, const Tensor& cache, const SeqLayout& layout,
                   const std::vector<Tensor>& kvb, const Tensor& kvb_of_row, int64_t nH, int64_t Dn, int64_t Dv,
                   float scale, Tensor& o) {
  const int64_t T = q.dim(0), Dqk = q.dim(1) / nH, Dr = Dqk - Dn;
  const int64_t width = cache.dim(2), Ckv = width - Dr;
  HYLORA_CHECK(!kvb.empty() && kvb[0].dim(0) == nH * (Dn + Dv) && kvb[0].dim(1) == Ckv && Dr > 0 &&
                   o.dim(0) == T && o.dim(1) == nH * Dv && kvb_of_row.numel() >= T,
               "internal: MLA shapes q ", shape_str(q.shape()), " cache ", shape_str(cache.shape()), " kv_b ",
               shape_str(kvb[0].shape()));
  const PagedRows rows = resolve_paged_rows(ctx, layout, T);
  const int64_t max_ctx = rows.max_ctx;
  const int threads = T * nH * max_ctx * Ckv > 65536 ? omp_get_max_threads() : 1;
  // Per thread: scores [max_ctx], latent query [Ckv], latent output [Ckv].
  Tensor buf = ctx.scratch.tensor({threads, max_ctx + 2 * Ckv});
  const float* c = cache.f32();
#pragma omp parallel num_threads(threads)
  {
    float* sc = buf.f32() + omp_get_thread_num() * (max_ctx + 2 * Ckv);
    float* qlat = sc + max_ctx;
    float* olat = qlat + Ckv;
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t h = 0; h < nH; ++h) {
        const int64_t s = rows.row_seq.i32()[t];
        const int64_t len = PagedRows::causal_keys(layout, s, t);
        const int32_t* slots = rows.slots(s);
        const Tensor& W = kvb.at(kvb_of_row.i32()[t]);  // [nH·(Dn + Dv), Ckv]
        const float* Wk = W.f32() + h * (Dn + Dv) * Ckv;  // [Dn, Ckv]
        const float* Wv = Wk + Dn * Ckv;                  // [Dv, Ckv]
        const float* qn = q.f32() + t * q.ld() + h * Dqk;
        const float* qr = qn + Dn;
        std::fill(qlat, qlat + Ckv, 0.0f);
        for (int64_t d = 0; d < Dn; ++d)
          for (int64_t i = 0; i < Ckv; ++i) qlat[i] += qn[d] * Wk[d * Ckv + i];
        for (int64_t j = 0; j < len; ++j) {
          const float* e = c + static_cast<int64_t>(slots[j]) * width;
          float acc = 0.0f;
          for (int64_t i = 0; i < Ckv; ++i) acc += qlat[i] * e[i];
          for (int64_t d = 0; d < Dr; ++d) acc += qr[d] * e[Ckv + d];
          sc[j] = acc * scale;
        }
        const float inv = softmax_numerators(sc, len);
        std::fill(olat, olat + Ckv, 0.0f);
        for (int64_t j = 0; j < len; ++j) {
          const float* e = c + static_cast<int64_t>(slots[j]) * width;
          const float p = sc[j] * inv;
          for (int64_t i = 0; i < Ckv; ++i) olat[i] += p * e[i];
        }
        float* out = o.f32() + t * o.ld() + h * Dv;
        for (int64_t d = 0; d < Dv; ++d) {
          float acc = 0.0f;
          for (int64_t i = 0; i < Ckv; ++i) acc += Wv[d * Ckv + i] * olat[i];
          out[d] = acc;
        }
      }
    }
  }
}

}  // namespace hylora::ops::cpu
