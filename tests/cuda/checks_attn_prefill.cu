// Checks of the bf16 mma.sync prefill (attn_prefill_mma.cu) against a double-precision reference: ragged varlen
// batches (1-4 sequences, 1 to > 1000 new rows, not multiples of the 64-row / 64-key tiles), cached context before
// the new rows (chunked prefill), shuffled pages of 8/16/32 tokens, GQA groups 1..16, D = 64/96/128/192/256 and MLA
// 192/128, plus a seeded random sweep of those. The reference covers a subset of the rows (every 5th, or 13th past
// 600 rows, plus the first and last 3 of each sequence) to keep the CPU time down. Also the timings old (WMMA) vs new
// at Qwen3.5-4B and Nemotron-H-like shapes (--bench).
#include <numeric>

#include "ops/cuda/attention.h"
#include "ops/cuda/attn_prefill_mma.h"
#include "tests/cuda/check_util.h"

using namespace chk;
namespace hc = hylora::cuda;

namespace {
struct Case {
  const char* name;
  int64_t nH, nKV, D, Dv, page_size;
  std::vector<int> n_new, prior;  // per sequence
  float qscale = 1.0f;            // > 1 sharpens the softmax
};

void run_case(const Case& c) {
  const DType d = DType::bf16;
  const int64_t S = c.n_new.size();
  const PagedLayout L = make_paged_layout(c.n_new, c.prior, c.page_size, /*extra_cols=*/2, /*min_cols=*/0,
                                          /*spare_pages=*/7);
  const std::vector<int32_t>& cu = L.cu, &ctx = L.ctx, &pt = L.pt;
  const int64_t max_pages = L.max_pages, num_pages = L.num_pages, T = cu[S];
  const int64_t kw = c.nKV * c.D, vw = c.nKV * c.Dv;
  const auto kpool = randn(num_pages * c.page_size * kw, 1.0f, d), vpool = randn(num_pages * c.page_size * vw, 1.0f, d);
  const int64_t ldq = c.nH * c.D + 8, ldo = c.nH * c.Dv + 6;
  const auto q = randn(T * ldq, c.qscale, d);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.D));
  // reference on the selected rows
  std::vector<int64_t> rows;
  const int stride = T > 600 ? 13 : 5;  // 13 is coprime to the 64-row tiles: the rows still hit every offset
  for (int64_t s = 0; s < S; ++s)
    for (int i = 0; i < c.n_new[s]; ++i)
      if (i % stride == 0 || i < 3 || i >= c.n_new[s] - 3) rows.push_back(cu[s] + i);
  std::vector<double> ref(rows.size() * c.nH * c.Dv);
  for (size_t r = 0; r < rows.size(); ++r) {
    const int64_t t = rows[r];
    const int64_t s = std::upper_bound(cu.begin(), cu.end(), static_cast<int32_t>(t)) - cu.begin() - 1;
    paged_attention_ref_row(q, ldq, t, c.prior[s] + (t - cu[s]), &pt[s * max_pages], c.page_size, kpool, kw, vpool,
                            vw, c.Dv, c.nH, c.nKV, c.D, c.Dv, scale, &ref[r * c.nH * c.Dv]);
  }
  Buf dkp = up(kpool, d), dvp = up(vpool, d), dq = up(q, d), dcu = up_raw(cu), dctx = up_raw(ctx), dpt = up_raw(pt);
  const auto o0 = randn(T * ldo, 1.0f, d);
  Buf dout = up(o0, d);
  hc::PagedAttention p;
  p.q = dq.p; p.ldq = ldq; p.k_pool = dkp.p; p.v_pool = dvp.p; p.o = dout.p; p.ldo = ldo;
  p.cu_seqlens = dcu.as<int32_t>(); p.context_lens = dctx.as<int32_t>(); p.page_table = dpt.as<int32_t>();
  p.S = S; p.T = T; p.nH = c.nH; p.nKV = c.nKV; p.D = c.D;
  p.Dv = c.Dv; p.page_size = c.page_size; p.max_pages = max_pages;
  p.scale = scale;
  char name[200];
  std::snprintf(name, sizeof name, "attn_prefill_mma %s S=%ld T=%ld nH=%ld nKV=%ld D=%ld Dv=%ld ps=%ld", c.name,
                (long)S, (long)T, (long)c.nH, (long)c.nKV, (long)c.D, (long)c.Dv, (long)c.page_size);
  if (!expect(std::string(name) + " supported", hc::attention_prefill_mma_supported(p))) return;
  CK(hc::attention_prefill_mma(p, nullptr));
  const auto got = down(dout, T * ldo, d);
  {  // attention_prefill (the engine's entry point) must take this kernel: same bits
    Buf dout2 = up(o0, d);
    p.o = dout2.p;
    CK(hc::attention_prefill(d, p, nullptr));
    expect(std::string(name) + " attention_prefill dispatches to it", down(dout2, T * ldo, d) == got);
    p.o = dout.p;
  }
  std::vector<float> g;
  for (int64_t t : rows)
    for (int64_t e = 0; e < c.nH * c.Dv; ++e) g.push_back(got[t * ldo + e]);
  compare(name, d, g, ref, 2e-5, 1.6e-2);
  bool pad_ok = true;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = c.nH * c.Dv; e < ldo; ++e) pad_ok &= got[t * ldo + e] == o0[t * ldo + e];
  expect(std::string(name) + " ld padding untouched", pad_ok);
}
}  // namespace

void check_attn_prefill() {
  std::vector<Case> cs;
  if (g_small) {
    cs = {{"small-g2-d64", 4, 2, 64, 64, 16, {1, 70, 5}, {0, 3, 60}},
          {"small-g4-d256", 4, 1, 256, 256, 16, {65, 2}, {0, 100}}};
  } else {
    cs = {{"qwen35-g4-d256", 16, 4, 256, 256, 16, {1100}, {0}},
          {"ragged-g1-d128", 4, 4, 128, 128, 16, {1, 77, 300, 1030}, {0, 50, 0, 0}},
          {"chunked-g2-d128", 8, 4, 128, 128, 16, {200, 65}, {900, 1500}},
          {"ragged-g8-d64", 16, 2, 64, 64, 16, {1000, 3, 129}, {0, 0, 64}},
          {"g16-d128", 32, 2, 128, 128, 16, {513, 1}, {0, 2000}},
          {"g3-d96", 6, 2, 96, 96, 16, {250, 40}, {10, 0}},
          {"g4-d192", 4, 1, 192, 192, 32, {300}, {100}},
          {"mla-192/128", 4, 4, 192, 128, 16, {410, 2}, {0, 600}},
          {"chunked-g4-d256", 8, 2, 256, 256, 16, {64, 128, 17, 1}, {1000, 64, 3, 0}},
          {"ps8-g2-d64", 4, 2, 64, 64, 8, {333, 64}, {31, 1}},
          {"sharp-g2-d128", 4, 2, 128, 128, 16, {257, 1000}, {0, 0}, 4.0f},
          {"sharp-g1-d256", 2, 2, 256, 256, 16, {130, 9}, {5, 700}, 3.0f}};
  }
  if (!g_small) {  // random sweep: 1-4 sequences, 1..1100 new rows, 0..700 cached, groups 1..16, pages 16/32/64
    static const int64_t dims[] = {64, 96, 128, 192, 256}, groups[] = {1, 2, 4, 8, 16}, pss[] = {16, 32, 64};
    for (int i = 0; i < 8; ++i) {
      Case c{"random", 0, 0, 0, 0, 0, {}, {}};
      c.D = c.Dv = dims[randint(0, 4)];
      const int64_t gs = groups[randint(0, 4)];
      c.nKV = randint(1, 2);
      c.nH = c.nKV * gs;
      c.page_size = pss[randint(0, 2)];
      const int S = randint(1, 4);
      for (int s = 0; s < S; ++s) {
        c.n_new.push_back(randint(0, 3) == 0 ? randint(1, 70) : randint(1, 1100));
        c.prior.push_back(randint(0, 1) ? 0 : randint(1, 700));
      }
      cs.push_back(c);
    }
  }
  for (const auto& c : cs) run_case(c);
}

// Old (WMMA) vs new (mma.sync) prefill: 1 × 8192 and 16 × 512 tokens at nH 16 / nKV 4 / D 256 (Qwen3.5-4B full
// attention) and 1 × 8192 at nH 32 / nKV 2 / D 128. FLOPs = 2 · 2 · nH · D · Σ n (n + 1) / 2 (causal QKᵀ + PV).
void bench_attn_prefill() {
  struct B {
    int64_t S, n, nH, nKV, D;
  };
  for (const B& b : {B{1, 8192, 16, 4, 256}, B{16, 512, 16, 4, 256}, B{1, 8192, 32, 2, 128}, B{1, 8192, 8, 1, 64}}) {
    const int64_t T = b.S * b.n, ps = 16, mp = (b.n + ps - 1) / ps;
    std::vector<int32_t> cu(b.S + 1), cl(b.S, static_cast<int32_t>(b.n)), pt(b.S * mp);
    for (int64_t s = 0; s <= b.S; ++s) cu[s] = static_cast<int32_t>(s * b.n);
    for (int64_t i = 0; i < b.S * mp; ++i) pt[i] = static_cast<int32_t>(i);
    Buf kp(T * b.nKV * b.D * 2), vp(T * b.nKV * b.D * 2), q(T * b.nH * b.D * 2), o(T * b.nH * b.D * 2);
    const auto rnd = randn(T * b.nH * b.D, 1.0f, DType::bf16);
    q = up(rnd, DType::bf16);
    kp = up(std::vector<float>(rnd.begin(), rnd.begin() + T * b.nKV * b.D), DType::bf16);
    vp = up(std::vector<float>(rnd.end() - T * b.nKV * b.D, rnd.end()), DType::bf16);
    Buf dcu = up_raw(cu), dcl = up_raw(cl), dpt = up_raw(pt);
    hc::PagedAttention p;
    p.q = q.p; p.ldq = b.nH * b.D; p.k_pool = kp.p; p.v_pool = vp.p; p.o = o.p; p.ldo = b.nH * b.D;
    p.cu_seqlens = dcu.as<int32_t>(); p.context_lens = dcl.as<int32_t>(); p.page_table = dpt.as<int32_t>();
    p.S = b.S; p.T = T; p.nH = b.nH; p.nKV = b.nKV; p.D = b.D; p.Dv = b.D; p.page_size = ps; p.max_pages = mp;
    p.scale = 1.0f / std::sqrt(static_cast<float>(b.D));
    const double flop = 4.0 * b.nH * b.D * b.S * (double)b.n * (b.n + 1) / 2;
    auto time = [&](cudaError_t (*f)(const hc::PagedAttention&, cudaStream_t)) {
      return time_ms([&] { CK(f(p, nullptr)); }, 5);
    };
    const double ms_old = time(hc::attention_prefill_wmma),
                 ms_new = time([](const hc::PagedAttention& pp, cudaStream_t st) { return hc::attention_prefill_mma(pp, st); });
    std::printf("TIME attention prefill bf16 %ldx%ld nH=%ld nKV=%ld D=%ld causal: old wmma %.3f ms (%.1f TFLOP/s), "
                "new mma %.3f ms (%.1f TFLOP/s), x%.2f\n",
                (long)b.S, (long)b.n, (long)b.nH, (long)b.nKV, (long)b.D, ms_old, flop / ms_old / 1e9, ms_new,
                flop / ms_new / 1e9, ms_old / ms_new);
    if (b.D <= 128) {  // tuning variant: 32-key tiles
      const double ms32 =
          time([](const hc::PagedAttention& pp, cudaStream_t st) { return hc::attention_prefill_mma(pp, st, 32); });
      std::printf("TIME attention prefill bf16 %ldx%ld nH=%ld nKV=%ld D=%ld causal: mma variant kN=32 %.3f ms "
                  "(%.1f TFLOP/s)\n", (long)b.S, (long)b.n, (long)b.nH, (long)b.nKV, (long)b.D, ms32,
                  flop / ms32 / 1e9);
    }
  }
}
