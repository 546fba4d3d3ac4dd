// Checks of the split-KV decode kernel (attention_decode -> attention_decode.cu) against a double-precision
// reference: GQA groups 1..24, D = Dv ∈ {64, 128, 256} and D 192 / Dv 128, page size 16 with shuffled page tables,
// one and several new rows per sequence (causal among them), padding sequences (no rows, no context), splits past
// every context (max_context above the longest), nsplit = 1 with no workspace, odd chunk sizes; q / o with padded
// leading dimensions (the padding must stay untouched). Timings of the decode shapes in bench_attention_decode.
#include <numeric>

#include "ops/cuda/attention.h"
#include "tests/cuda/check_util.h"

using namespace chk;
namespace hc = hylora::cuda;

namespace {
struct DecCase {
  const char* name;
  int64_t nH, nKV, D, Dv;
  std::vector<int> n_new, prior;  // per sequence (prior: cached tokens before this step)
  std::vector<int64_t> chunks;    // split sizes to run (≥ max context: nsplit = 1, workspace nullptr)
  int64_t extra_ctx = 0;          // max_context passed = longest context + extra_ctx (empty trailing splits)
};

void run_case(const DecCase& c, DType d) {
  const int64_t S = c.n_new.size(), ps = 16;
  std::vector<int32_t> cu(S + 1, 0), ctx(S);
  int64_t max_pages = 1, total_pages = 0, max_ctx = 0;
  for (int64_t s = 0; s < S; ++s) {
    cu[s + 1] = cu[s] + c.n_new[s];
    ctx[s] = c.n_new[s] + c.prior[s];
    max_ctx = std::max<int64_t>(max_ctx, ctx[s]);
    max_pages = std::max<int64_t>(max_pages, (ctx[s] + ps - 1) / ps);
    total_pages += (ctx[s] + ps - 1) / ps;
  }
  const int64_t T = cu[S], num_pages = total_pages + 3;
  std::vector<int32_t> pages(num_pages);
  std::iota(pages.begin(), pages.end(), 0);
  std::shuffle(pages.begin(), pages.end(), g_rng);
  std::vector<int32_t> pt(S * max_pages, -1);
  int64_t next = 0;
  for (int64_t s = 0; s < S; ++s)
    for (int64_t q = 0; q < (ctx[s] + ps - 1) / ps; ++q) pt[s * max_pages + q] = pages[next++];
  const int64_t kw = c.nKV * c.D, vw = c.nKV * c.Dv, ldq = c.nH * c.D + 8, ldo = c.nH * c.Dv + 8;
  const auto kpool = randn(num_pages * ps * kw, 1.0f, d), vpool = randn(num_pages * ps * vw, 1.0f, d);
  const auto q = randn(std::max<int64_t>(T, 1) * ldq, 1.0f, d);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.D));
  // reference: row i of seq s at position prior + i sees cache tokens 0..prior+i
  std::vector<double> ref(T * c.nH * c.Dv);
  for (int64_t s = 0; s < S; ++s)
    for (int i = 0; i < c.n_new[s]; ++i)
      paged_attention_ref_row(q, ldq, cu[s] + i, c.prior[s] + i, &pt[s * max_pages], ps, kpool, kw, vpool, vw, c.Dv,
                              c.nH, c.nKV, c.D, c.Dv, scale, &ref[(cu[s] + i) * c.nH * c.Dv]);
  Buf dk = up(kpool, d), dv = up(vpool, d), dq = up(q, d), dcu = up_raw(cu), dctx = up_raw(ctx), dpt = up_raw(pt);
  hc::PagedAttention p;
  p.q = dq.p;
  p.ldq = ldq;
  p.k_pool = dk.p;
  p.v_pool = dv.p;
  p.ldo = ldo;
  p.cu_seqlens = dcu.as<int32_t>();
  p.context_lens = dctx.as<int32_t>();
  p.page_table = dpt.as<int32_t>();
  p.S = S;
  p.T = T;
  p.nH = c.nH;
  p.nKV = c.nKV;
  p.D = c.D;
  p.Dv = c.Dv;
  p.page_size = ps;
  p.max_pages = max_pages;
  p.scale = scale;
  const int64_t mctx = max_ctx + c.extra_ctx;
  for (int64_t chunk : c.chunks) {
    const int64_t nsplit = std::max<int64_t>(1, (mctx + chunk - 1) / chunk);
    const auto o0 = randn(std::max<int64_t>(T, 1) * ldo, 1.0f, d);
    Buf dout = up(o0, d);
    p.o = dout.p;
    Buf ws(nsplit > 1 ? hc::attention_decode_workspace_floats(p, mctx, chunk) * 4 : 0);
    CK(hc::attention_decode(d, p, mctx, nsplit > 1 ? ws.as<float>() : nullptr, nullptr, chunk));
    const auto got = down(dout, std::max<int64_t>(T, 1) * ldo, d);
    std::vector<float> g2;
    bool pad_ok = true;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t e = 0; e < c.nH * c.Dv; ++e) g2.push_back(got[t * ldo + e]);
      for (int64_t e = c.nH * c.Dv; e < ldo; ++e) pad_ok &= got[t * ldo + e] == o0[t * ldo + e];
    }
    char name[220];
    std::snprintf(name, sizeof name, "attn-decode %s S=%ld T=%ld nH=%ld nKV=%ld D=%ld Dv=%ld maxctx=%ld nsplit=%ld",
                  c.name, (long)S, (long)T, (long)c.nH, (long)c.nKV, (long)c.D, (long)c.Dv, (long)mctx, (long)nsplit);
    compare(name, d, g2, ref, 2e-5, 1.6e-2);
    expect(std::string(name) + " ld padding untouched", pad_ok);
  }
}

std::vector<int> rand_prior(int n, int hi) {
  std::vector<int> v(n);
  for (auto& x : v) x = randint(0, hi);
  return v;
}
}  // namespace

void check_attention_decode() {
  const int64_t one = int64_t{1} << 20;  // a chunk ≥ every context: nsplit = 1, workspace nullptr
  std::vector<DecCase> cs;
  if (g_small) {
    cs = {{"qwen", 16, 4, 256, 256, {1, 1, 0, 1}, {70, 0, 0, 33}, {32, one}},
          {"rows", 8, 2, 64, 64, {3, 1, 4}, {20, 5, 40}, {32, one}, 40}};
  } else {
    cs = {{"qwen3.5-4b", 16, 4, 256, 256, std::vector<int>(12, 1), rand_prior(12, 1500), {64, 256, 96, one}},
          {"llama-gqa4", 32, 8, 128, 128, std::vector<int>(6, 1), rand_prior(6, 1200), {128, 512, one}},
          {"mha-d64", 4, 4, 64, 64, std::vector<int>(5, 1), rand_prior(5, 700), {32, one}},
          {"gqa16-d128", 32, 2, 128, 128, {1, 1, 1}, {900, 15, 300}, {256, one}},
          {"gqa16-d256", 16, 1, 256, 256, {1, 1}, {1000, 64}, {160, one}},
          {"gqa24-d64", 24, 1, 64, 64, {1, 1, 1}, {400, 3, 129}, {64, one}},
          {"gqa6-d64", 12, 2, 64, 64, {1, 1, 1, 1}, {17, 500, 16, 0}, {96, one}},
          {"gqa3-d128", 6, 2, 128, 128, {1, 1}, {250, 31}, {32, one}},
          {"rows2-4-qwen", 16, 4, 256, 256, {2, 4, 3, 1}, {100, 600, 17, 0}, {64, 256, one}},
          {"rows-llama", 32, 8, 128, 128, {4, 4, 2}, {1000, 15, 70}, {128, one}},
          {"padding-seqs", 16, 4, 128, 128, {1, 0, 1, 0, 1}, {300, 0, 0, 20, 45}, {64, one}},
          {"empty-splits", 16, 4, 256, 256, {1, 1, 1}, {40, 300, 5}, {64, 512}, 1500},
          {"prefill-rows", 8, 2, 128, 128, {37, 0, 5, 70}, {0, 10, 200, 33}, {64, one}},
          {"mla-192/128", 4, 4, 192, 128, {1, 3}, {500, 60}, {128, one}},
          {"long-1seq", 16, 4, 256, 256, {1}, {8000}, {256, one}}};
  }
  for (DType d : {DType::f32, DType::bf16})
    for (const auto& c : cs) run_case(c, d);
}

// Decode timings: GB/s of K/V read (the bound of a decode step). Contiguous pages; zeros (timing only).
template <typename F>
static double time_dec(F&& f, int reps = 20) {
  f();
  CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaEventRecord(a);
  for (int i = 0; i < reps; ++i) f();
  cudaEventRecord(b);
  CK(cudaEventSynchronize(b));
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / reps;
}

void bench_attention_decode() {
  struct B {
    int64_t S, ctx, nH, nKV, D;
    DType d;
    std::vector<int64_t> chunks;
  };
  const std::vector<B> bs = {{64, 4096, 32, 8, 128, DType::bf16, {4096, 1024, 512, 256}},
                             {64, 1024, 16, 4, 256, DType::bf16, {1024, 512, 256}},
                             {64, 1024, 16, 4, 256, DType::f32, {1024, 512, 256}},
                             {1, 8192, 16, 4, 256, DType::bf16, {256, 128}},
                             {1, 8192, 16, 4, 256, DType::f32, {256, 128}}};
  for (const auto& b : bs) {
    const int64_t ps = 16, mp = b.ctx / ps, es = hc::dtype_size(b.d);
    std::vector<int32_t> cu(b.S + 1), cl(b.S, static_cast<int32_t>(b.ctx)), pt(b.S * mp);
    for (int64_t s = 0; s <= b.S; ++s) cu[s] = static_cast<int32_t>(s);
    for (int64_t i = 0; i < b.S * mp; ++i) pt[i] = static_cast<int32_t>(i);
    Buf kp(b.S * b.ctx * b.nKV * b.D * es), vp(b.S * b.ctx * b.nKV * b.D * es), q(b.S * b.nH * b.D * es),
        o(b.S * b.nH * b.D * es);
    for (Buf* x : {&kp, &vp, &q}) CK(cudaMemset(x->p, 0, x->bytes));
    Buf dcu = up_raw(cu), dcl = up_raw(cl), dpt = up_raw(pt);
    hc::PagedAttention p;
    p.q = q.p; p.ldq = b.nH * b.D; p.k_pool = kp.p; p.v_pool = vp.p; p.o = o.p; p.ldo = b.nH * b.D;
    p.cu_seqlens = dcu.as<int32_t>(); p.context_lens = dcl.as<int32_t>(); p.page_table = dpt.as<int32_t>();
    p.S = b.S; p.T = b.S; p.nH = b.nH; p.nKV = b.nKV; p.D = b.D; p.Dv = b.D; p.page_size = ps; p.max_pages = mp;
    p.scale = 1.0f / std::sqrt(static_cast<float>(b.D));
    for (int64_t chunk : b.chunks) {
      const int64_t nsplit = (b.ctx + chunk - 1) / chunk;
      Buf ws(nsplit > 1 ? hc::attention_decode_workspace_floats(p, b.ctx, chunk) * 4 : 0);
      float* wsp = nsplit > 1 ? ws.as<float>() : nullptr;
      const double ms = time_dec([&] { CK(hc::attention_decode(b.d, p, b.ctx, wsp, nullptr, chunk)); });
      std::printf("TIME attention decode-split %s S=%ld ctx=%ld nH=%ld nKV=%ld D=%ld nsplit=%ld: %.1f us -> %.0f GB/s "
                  "of KV\n", dname(b.d), (long)b.S, (long)b.ctx, (long)b.nH, (long)b.nKV, (long)b.D, (long)nsplit,
                  ms * 1e3, (double)(kp.bytes + vp.bytes) / ms / 1e6);
    }
  }
}
