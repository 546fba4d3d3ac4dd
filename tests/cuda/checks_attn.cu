// Checks of the paged attention: KV store (with padding rows), varlen causal prefill and split-KV decode over
// shuffled pages, GQA groups 1..16, D ≠ Dv (MLA shapes), contexts past tile/chunk/page boundaries (≥ 400 tokens),
// new rows appended to an existing context.
#include <numeric>

#include "ops/cuda/attention.h"
#include "tests/cuda/check_util.h"

using namespace chk;
namespace hc = hylora::cuda;

namespace {
struct Scenario {
  const char* name;
  int64_t nH, nKV, D, Dv, page_size;
  std::vector<int> n_new, prior;  // per sequence
  bool shared_kv = false;         // MLA absorbed: V = the first Dv dims of the K (latent) pool rows
};

void run(const Scenario& sc, DType d) {
  const int64_t S = sc.n_new.size();
  const PagedLayout L = make_paged_layout(sc.n_new, sc.prior, sc.page_size, /*extra_cols=*/1, /*min_cols=*/0,
                                          /*spare_pages=*/5);
  const std::vector<int32_t>& cu = L.cu, &ctx = L.ctx, &pt = L.pt;
  const int64_t max_pages = L.max_pages, num_pages = L.num_pages, max_ctx = L.max_ctx, T = cu[S];
  const int64_t kw = sc.nKV * sc.D, vw = sc.shared_kv ? kw : sc.nKV * sc.Dv;
  auto kpool = randn(num_pages * sc.page_size * kw, 1.0f, d), vpool = randn(num_pages * sc.page_size * vw, 1.0f, d);
  // new rows (+1 padding row with kv_slot -1)
  const int64_t ldk = kw + 4, ldv = vw + 2, ldq = sc.nH * sc.D + 8, ldo = sc.nH * sc.Dv + 4;
  auto knew = randn((T + 1) * ldk, 1.0f, d), vnew = randn((T + 1) * ldv, 1.0f, d), q = randn(T * ldq, 1.0f, d);
  std::vector<int32_t> kv_slot(T + 1, -1);
  for (int64_t s = 0; s < S; ++s)
    for (int i = 0; i < sc.n_new[s]; ++i) {
      const int64_t p = sc.prior[s] + i;
      kv_slot[cu[s] + i] = static_cast<int32_t>(pt[s * max_pages + p / sc.page_size] * sc.page_size + p % sc.page_size);
    }
  // padding row at the end of the store
  Buf dkp = up(kpool, d), dvp = up(vpool, d), dkn = up(knew, d), dvn = up(vnew, d), dq = up(q, d),
      dslot = up_raw(kv_slot), dcu = up_raw(cu), dctx = up_raw(ctx), dpt = up_raw(pt);
  CK(hc::kv_store(d, dkn.p, ldk, dvn.p, ldv, dslot.as<int32_t>(), T + 1, dkp.p, dvp.p, sc.nKV, sc.D,
                  sc.shared_kv ? 0 : sc.Dv, nullptr));
  for (int64_t t = 0; t < T; ++t) {  // host mirror of the store
    for (int64_t e = 0; e < kw; ++e) kpool[kv_slot[t] * kw + e] = knew[t * ldk + e];
    if (!sc.shared_kv)
      for (int64_t e = 0; e < vw; ++e) vpool[kv_slot[t] * vw + e] = vnew[t * ldv + e];
  }
  auto kgot = down(dkp, kpool.size(), d), vgot = down(dvp, vpool.size(), d);
  char name[200];
  std::snprintf(name, sizeof name, "attn %s S=%ld T=%ld nH=%ld nKV=%ld D=%ld Dv=%ld ps=%ld maxctx=%ld", sc.name,
                (long)S, (long)T, (long)sc.nH, (long)sc.nKV, (long)sc.D, (long)sc.Dv, (long)sc.page_size,
                (long)max_ctx);
  expect(std::string(name) + " kv_store", kgot == kpool && vgot == vpool);
  if (sc.shared_kv) vpool = kpool;  // the reference reads V from the latent rows
  // reference
  const float scale = 1.0f / std::sqrt(static_cast<float>(sc.D));
  std::vector<double> ref(T * sc.nH * sc.Dv);
  for (int64_t s = 0; s < S; ++s)
    for (int i = 0; i < sc.n_new[s]; ++i)
      paged_attention_ref_row(q, ldq, cu[s] + i, sc.prior[s] + i, &pt[s * max_pages], sc.page_size, kpool, kw, vpool,
                              vw, sc.shared_kv ? sc.D : sc.Dv, sc.nH, sc.nKV, sc.D, sc.Dv, scale,
                              &ref[(cu[s] + i) * sc.nH * sc.Dv]);
  hc::PagedAttention p;
  p.q = dq.p; p.ldq = ldq; p.k_pool = dkp.p; p.v_pool = sc.shared_kv ? dkp.p : dvp.p;
  p.v_token_stride = sc.shared_kv ? kw : 0; p.ldo = ldo;
  p.cu_seqlens = dcu.as<int32_t>(); p.context_lens = dctx.as<int32_t>(); p.page_table = dpt.as<int32_t>();
  p.S = S; p.T = T; p.nH = sc.nH; p.nKV = sc.nKV; p.D = sc.D;
  p.Dv = sc.Dv; p.page_size = sc.page_size; p.max_pages = max_pages;
  p.scale = scale;
  for (int mode = 0; mode < 2; ++mode) {
    const auto o0 = randn(T * ldo, 1.0f, d);
    Buf dout = up(o0, d);
    p.o = dout.p;
    const int64_t chunk = 64;
    Buf ws(std::max<size_t>(1, hc::attention_decode_workspace_floats(p, max_ctx, chunk)) * 4);
    if (mode == 0)
      CK(hc::attention_prefill(d, p, nullptr));
    else
      CK(hc::attention_decode(d, p, max_ctx, ws.as<float>(), nullptr, chunk));
    auto got = down(dout, T * ldo, d);
    std::vector<float> g2;
    bool pad_ok = true;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t c = 0; c < sc.nH * sc.Dv; ++c) g2.push_back(got[t * ldo + c]);
      for (int64_t c = sc.nH * sc.Dv; c < ldo; ++c) pad_ok &= got[t * ldo + c] == o0[t * ldo + c];
    }
    compare(std::string(name) + (mode == 0 ? " prefill" : " split-kv chunk=64"), d, g2, ref, 2e-5, 1.6e-2);
    expect(std::string(name) + (mode == 0 ? " prefill" : " split-kv") + " ld padding untouched", pad_ok);
  }
}
}  // namespace

void check_attention() {
  std::vector<Scenario> scs;
  if (g_small) {
    scs = {{"mixed", 4, 2, 64, 64, 16, {1, 19, 0, 40}, {0, 5, 3, 33}},
           {"mla", 2, 2, 48, 32, 8, {7, 1}, {10, 70}},
           {"mla-absorbed", 4, 1, 96, 64, 16, {1, 2}, {40, 7}, true}};
  } else {
    scs = {{"qwen-prefill", 4, 2, 256, 256, 16, {450, 1, 37, 0, 16}, {0, 20, 300, 5, 0}},
           {"gqa16", 32, 2, 128, 128, 32, {70, 1, 129}, {400, 1000, 3}},
           {"gqa6", 6, 1, 64, 64, 16, {33, 417}, {31, 0}},
           {"mla-192/128", 4, 4, 192, 128, 64, {410, 2}, {0, 600}},
           {"decode-24", 8, 2, 128, 128, 16, std::vector<int>(24, 1), {}},
           {"odd-dims", 3, 3, 40, 72, 8, {5, 100}, {123, 0}},
           {"scalar-loads", 2, 1, 42, 20, 8, {3, 60}, {70, 0}},
           {"gqa24", 24, 1, 64, 64, 16, {5, 40}, {100, 3}},
           {"mla-absorbed-576/512", 16, 1, 576, 512, 64, {1, 1, 3}, {300, 1000, 50}, true}};
    for (int s = 0; s < 24; ++s) scs[4].prior.push_back(randint(0, 2100));
  }
  for (DType d : {DType::f32, DType::bf16})
    for (const auto& sc : scs) run(sc, d);
}
