// CPU emulation check of the split-KV decode kernel (README.md here). The kernel source, rewritten by transform.py,
// comes in through -include.
#include <cstdio>
#include <numeric>
#include <random>
using namespace hylora::cuda;
static std::mt19937_64 rng(7);
static int fails = 0;
static float rnd(DType d) { static std::normal_distribution<float> nd; float v = nd(rng); return d == DType::f32 ? v : __bfloat162float(__float2bfloat16_rn(v)); }
struct Store {  // host "device" buffer of type d
  DType d; std::vector<float> f; std::vector<__nv_bfloat16> b;
  Store(const std::vector<float>& v, DType dd) : d(dd), f(v) { if (d == DType::bf16) { b.resize(v.size()); for (size_t i = 0; i < v.size(); ++i) b[i] = __float2bfloat16_rn(v[i]); } }
  void* p() { return d == DType::f32 ? (void*)f.data() : (void*)b.data(); }
  float get(size_t i) const { return d == DType::f32 ? f[i] : __bfloat162float(b[i]); }
};
void run(const char* name, int64_t nH, int64_t nKV, int64_t D, int64_t Dv, std::vector<int> n_new, std::vector<int> prior,
         std::vector<int64_t> chunks, DType d, int64_t extra = 0) {
  const int64_t S = n_new.size(), ps = 16;
  std::vector<int32_t> cu(S + 1, 0), ctx(S);
  int64_t max_pages = 1, total = 0, max_ctx = 0;
  for (int64_t s = 0; s < S; ++s) { cu[s + 1] = cu[s] + n_new[s]; ctx[s] = n_new[s] + prior[s]; max_ctx = std::max<int64_t>(max_ctx, ctx[s]);
    max_pages = std::max<int64_t>(max_pages, (ctx[s] + ps - 1) / ps); total += (ctx[s] + ps - 1) / ps; }
  const int64_t T = cu[S], np = total + 3;
  std::vector<int32_t> pages(np); std::iota(pages.begin(), pages.end(), 0); std::shuffle(pages.begin(), pages.end(), rng);
  std::vector<int32_t> pt(S * max_pages, -1); int64_t nx = 0;
  for (int64_t s = 0; s < S; ++s) for (int64_t q = 0; q < (ctx[s] + ps - 1) / ps; ++q) pt[s * max_pages + q] = pages[nx++];
  const int64_t kw = nKV * D, vw = nKV * Dv, ldq = nH * D + 8, ldo = nH * Dv + 8;
  std::vector<float> kp(np * ps * kw), vp(np * ps * vw), q(std::max<int64_t>(T, 1) * ldq);
  for (auto& x : kp) x = rnd(d); for (auto& x : vp) x = rnd(d); for (auto& x : q) x = rnd(d);
  const float scale = 1.0f / std::sqrt((float)D);
  const int64_t gs = nH / nKV;
  std::vector<double> ref(T * nH * Dv);
  for (int64_t s = 0; s < S; ++s) for (int i = 0; i < n_new[s]; ++i) {
    const int64_t t = cu[s] + i, pos = prior[s] + i;
    for (int64_t h = 0; h < nH; ++h) { const int64_t kvh = h / gs; std::vector<double> sc(pos + 1); double mx = -1e300;
      for (int64_t j = 0; j <= pos; ++j) { const int64_t sl = pt[s * max_pages + j / ps] * ps + j % ps; double a = 0;
        for (int64_t e = 0; e < D; ++e) a += (double)q[t * ldq + h * D + e] * kp[sl * kw + kvh * D + e]; sc[j] = a * scale; mx = std::max(mx, sc[j]); }
      double den = 0; for (auto& v : sc) den += (v = std::exp(v - mx));
      for (int64_t e = 0; e < Dv; ++e) { double a = 0; for (int64_t j = 0; j <= pos; ++j) { const int64_t sl = pt[s * max_pages + j / ps] * ps + j % ps; a += sc[j] * vp[sl * vw + kvh * Dv + e]; }
        ref[(t * nH + h) * Dv + e] = a / den; } } }
  Store K(kp, d), V(vp, d), Q(q, d);
  PagedAttention p; p.q = Q.p(); p.ldq = ldq; p.k_pool = K.p(); p.v_pool = V.p(); p.ldo = ldo;
  p.cu_seqlens = cu.data(); p.context_lens = ctx.data(); p.page_table = pt.data(); p.S = S; p.T = T; p.nH = nH; p.nKV = nKV;
  p.D = D; p.Dv = Dv; p.page_size = ps; p.max_pages = max_pages; p.scale = scale;
  const int64_t mctx = max_ctx + extra;
  for (int64_t chunk : chunks) {
    const int64_t nsplit = std::max<int64_t>(1, (mctx + chunk - 1) / chunk);
    std::vector<float> o0(std::max<int64_t>(T, 1) * ldo); for (auto& x : o0) x = rnd(d);
    Store O(o0, d);
    p.o = O.p();
    std::vector<float> ws(nsplit > 1 ? T * nH * nsplit * (Dv + 1) : 0, NAN);
    if (!attention_decode_split_ok(d, p)) { printf("NOT OK shapes %s\n", name); fails++; return; }
    const cudaError_t e = attention_decode_split(d, p, nsplit, chunk, nsplit > 1 ? ws.data() : nullptr, nullptr);
    double md = 0, mr = 0; bool pad = true, fin = true;
    for (int64_t t = 0; t < T; ++t) { for (int64_t c = 0; c < nH * Dv; ++c) { const double g = O.get(t * ldo + c), r = ref[t * nH * Dv + c];
        if (!std::isfinite(g)) fin = false; md = std::max(md, std::fabs(g - r)); mr = std::max(mr, std::fabs(r)); }
      for (int64_t c = nH * Dv; c < ldo; ++c) pad &= O.get(t * ldo + c) == o0[t * ldo + c]; }
    const double tol = d == DType::f32 ? 2e-5 : 1.6e-2; const bool ok = e == cudaSuccess && fin && pad && md / mr <= tol;
    if (!ok) fails++;
    printf("%s %-14s %s S=%ld T=%ld nH=%ld nKV=%ld D=%ld Dv=%ld nsplit=%ld: rel %.3e pad %d\n", ok ? "PASS" : "FAIL", name,
           d == DType::f32 ? "f32" : "bf16", (long)S, (long)T, (long)nH, (long)nKV, (long)D, (long)Dv, (long)nsplit, md / mr, (int)pad);
    fflush(stdout);
  }
}
int main() {
  const int64_t one = 1 << 20;
  for (DType d : {DType::f32, DType::bf16}) {
    run("qwen", 16, 4, 256, 256, {1, 1, 1}, {300, 0, 77}, {64, 96, one}, d);
    run("llama", 32, 8, 128, 128, {1, 1}, {200, 33}, {128, one}, d);
    run("mha-d64", 2, 2, 64, 64, {1, 1}, {100, 5}, {32, one}, d);
    run("gqa16", 16, 1, 128, 128, {1}, {150}, {64, one}, d);
    run("gqa16-d256", 16, 1, 256, 256, {1}, {70}, {32, one}, d);
    run("gqa24", 24, 1, 64, 64, {1, 1}, {60, 3}, {32, one}, d);
    run("gqa6", 12, 2, 64, 64, {1, 1, 1}, {17, 90, 0}, {32, one}, d);
    run("rows-qwen", 8, 2, 256, 256, {2, 4, 3}, {40, 100, 0}, {64, one}, d);
    run("rows-llama", 8, 2, 128, 128, {4, 2}, {100, 15}, {32, one}, d);
    run("padding", 8, 2, 128, 128, {1, 0, 1, 0}, {50, 0, 0, 20}, {32, one}, d);
    run("empty-splits", 8, 2, 64, 64, {1, 1}, {40, 70}, {32}, d, 200);
    run("prefill-rows", 4, 2, 64, 64, {21, 0, 3}, {0, 10, 40}, {32, one}, d);
    run("mla-192/128", 2, 2, 192, 128, {1, 3}, {90, 20}, {64, one}, d);
  }
  printf("%d failures\n", fails);
  return fails != 0;
}
