// MLA over the compressed-latent cache (ops/mla.h, absorbed form) against the reference formulation: decompress every
// cached latent through kv_b_proj into per-head keys [k_nope | k_rope] and values, then plain causal attention,
// in double precision, over sequences that span several pages.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/exec_ctx.h"
#include "ops/mla.h"

namespace hylora {
namespace {

TEST(MlaLatent, AbsorbedAttentionEqualsDecompressedReference) {
  const int64_t nH = 3, Dn = 8, Dr = 4, Dv = 6, Ckv = 10, page = 4, pages = 16;
  const float scale = 0.3f;
  std::mt19937 g(3);
  std::normal_distribution<float> nd;
  auto randn = [&](Shape s) {
    Tensor t = Tensor::empty(std::move(s));
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = nd(g);
    return t;
  };
  // Two sequences: 7 cached + 3 new, and 0 cached + 5 new; pages handed out out of order.
  const int64_t past[2] = {7, 0}, n_new[2] = {3, 5}, T = 8;
  const int32_t table[2][4] = {{5, 2, 9, -1}, {0, 11, -1, -1}};
  Tensor cache = randn({pages, page, Ckv + Dr});  // cached rows of both sequences (new rows included)
  Tensor W = randn({nH * (Dn + Dv), Ckv});        // kv_b_proj
  Tensor q = randn({T, nH * (Dn + Dr)});
  ExecCtx ctx;
  ops::SeqLayout l;
  l.num_seqs = 2;
  l.num_tokens = T;
  l.page_size = page;
  l.max_pages = 4;
  auto ints = [](std::vector<int32_t> v) {
    Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::I32);
    std::copy(v.begin(), v.end(), t.i32());
    return t;
  };
  l.cu_seqlens = ints({0, 3, 8});
  l.context_lens = ints({10, 5});
  l.page_table = ints({5, 2, 9, -1, 0, 11, -1, -1}).reshape({2, 4});
  Tensor row_w = ints(std::vector<int32_t>(T, 0));
  Tensor o = Tensor::empty({T, nH * Dv});
  ops::mla_attention(ctx, q, cache, l, {W}, row_w, nH, Dn, Dv, scale, o);

  auto entry = [&](int s, int64_t j) {
    return cache.f32() + (static_cast<int64_t>(table[s][j / page]) * page + j % page) * (Ckv + Dr);
  };
  double worst = 0;
  for (int s = 0; s < 2; ++s)
    for (int64_t i = 0; i < n_new[s]; ++i) {
      const int64_t t = l.cu_seqlens.i32()[s] + i, len = past[s] + i + 1;
      for (int64_t h = 0; h < nH; ++h) {
        std::vector<double> sc(len), v(len * Dv);
        double mx = -1e300;
        for (int64_t j = 0; j < len; ++j) {
          const float* c = entry(s, j);
          double dot = 0;
          for (int64_t d = 0; d < Dn; ++d) {  // k_nope = W_k,h c
            double k = 0;
            for (int64_t x = 0; x < Ckv; ++x) k += W.f32()[(h * (Dn + Dv) + d) * Ckv + x] * c[x];
            dot += q.f32()[t * q.ld() + h * (Dn + Dr) + d] * k;
          }
          for (int64_t d = 0; d < Dr; ++d) dot += q.f32()[t * q.ld() + h * (Dn + Dr) + Dn + d] * c[Ckv + d];
          sc[j] = dot * scale;
          mx = std::max(mx, sc[j]);
          for (int64_t d = 0; d < Dv; ++d) {  // v = W_v,h c
            double vv = 0;
            for (int64_t x = 0; x < Ckv; ++x) vv += W.f32()[(h * (Dn + Dv) + Dn + d) * Ckv + x] * c[x];
            v[j * Dv + d] = vv;
          }
        }
        double sum = 0;
        for (auto& x : sc) sum += (x = std::exp(x - mx));
        for (int64_t d = 0; d < Dv; ++d) {
          double want = 0;
          for (int64_t j = 0; j < len; ++j) want += sc[j] / sum * v[j * Dv + d];
          worst = std::max(worst, std::fabs(want - o.f32()[t * o.ld() + h * Dv + d]));
        }
      }
    }
  EXPECT_LT(worst, 2e-5);
}

}  // namespace
}  // namespace hylora
