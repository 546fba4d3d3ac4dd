// Checks of the split-KV decode kernels (attention_decode -> attention_decode_mma.cu for bf16, attention_decode.cu for
// fp32) against a double-precision reference: GQA groups 1..24, D = Dv ∈ {64, 128, 256}, D 192 / Dv 128 and D 32 /
// Dv 64, page size 16 with shuffled page tables, one and several new rows per sequence (causal among them), padding
// sequences (no rows, no context), splits past every context (max_context above the longest), more splits than keys,
// nsplit = 1 with no workspace, odd chunk sizes (bf16: any chunk, the kernel re-cuts each context itself), the split
// count attention_decode_splits picks; q / o with padded leading dimensions (the padding must stay untouched).
// bf16 tolerance 5e-3 of max|ref|: K, V, q are bf16 and exact in the mma, p goes in as bf16 hi + lo, so the output's
// own bf16 rounding (≤ 2^-9) is the only error expected. Timings (--bench): bench_attention_decode below.
#include <numeric>

#include "ops/cuda/attention.h"
#include "ops/cuda/attention_decode.h"
#include "tests/cuda/check_util.h"

using namespace chk;
namespace hc = hylora::cuda;

namespace {
constexpr int64_t kPolicy = -1;
struct DecCase {
  const char* name;
  int64_t nH, nKV, D, Dv;
  std::vector<int> n_new, prior;  // per sequence (prior: cached tokens before this step)
  std::vector<int64_t> chunks;    // split sizes to run (≥ max context: nsplit = 1, workspace nullptr; kPolicy: the
                                  // split count attention_decode_splits picks; not a multiple of 32: bf16 only)
  int64_t extra_ctx = 0;          // max_context passed = longest context + extra_ctx (empty trailing splits)
};

void run_case(const DecCase& c, DType d) {
  const int64_t S = c.n_new.size(), ps = 16;
  const PagedLayout L = make_paged_layout(c.n_new, c.prior, ps, /*extra_cols=*/0, /*min_cols=*/1, /*spare_pages=*/3);
  const std::vector<int32_t>& cu = L.cu, &ctx = L.ctx, &pt = L.pt;
  const int64_t max_pages = L.max_pages, num_pages = L.num_pages, max_ctx = L.max_ctx, T = cu[S];
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
  p.q = dq.p; p.ldq = ldq; p.k_pool = dk.p; p.v_pool = dv.p; p.ldo = ldo;
  p.cu_seqlens = dcu.as<int32_t>(); p.context_lens = dctx.as<int32_t>(); p.page_table = dpt.as<int32_t>();
  p.S = S; p.T = T; p.nH = c.nH; p.nKV = c.nKV; p.D = c.D; p.Dv = c.Dv; p.page_size = ps; p.max_pages = max_pages;
  p.scale = scale;
  const int64_t mctx = max_ctx + c.extra_ctx;
  for (int64_t chunk : c.chunks) {
    if (chunk == kPolicy) {  // what the engine asks for (bf16 only: fp32 keeps the backend's own rule)
      const int64_t n = hc::attention_decode_splits(d, p, mctx);
      if (n == 0) continue;
      char nm[160];
      std::snprintf(nm, sizeof nm, "attn-decode %s splits policy: %ld of ≤ 32, ≤ max_context / 32", c.name, (long)n);
      expect(nm, n >= 1 && n <= 32 && n <= std::max<int64_t>(1, (mctx + 31) / 32));
      chunk = (mctx + n - 1) / n;
    }
    if (d == DType::f32 && chunk % 32 != 0) continue;  // the fp32 kernel's ranges are multiples of 32 keys
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
    compare(name, d, g2, ref, 2e-5, 5e-3);
    expect(std::string(name) + " ld padding untouched", pad_ok);
  }
}

std::vector<int> rand_prior(int n, int hi) {
  std::vector<int> v(n);
  for (auto& x : v) x = randint(0, hi);
  return v;
}
}  // namespace

void bench_attention_decode();

void check_attention_decode() {
  const int64_t one = int64_t{1} << 20;  // a chunk ≥ every context: nsplit = 1, workspace nullptr
  std::vector<DecCase> cs;
  if (g_small) {
    cs = {{"qwen", 16, 4, 256, 256, {1, 1, 0, 1}, {70, 0, 0, 33}, {32, 7, one}},
          {"rows", 8, 2, 64, 64, {3, 1, 4}, {20, 5, 40}, {32, one}, 40},
          {"rows-d128-gqa8", 16, 2, 128, 128, {2, 1}, {40, 3}, {kPolicy, 5}, 20}};
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
          {"long-1seq", 16, 4, 256, 256, {1}, {8000}, {256, one, kPolicy}},
          {"qwen3.5-35b-b1", 16, 2, 256, 256, {1}, {1027}, {kPolicy, 64, 33, 128, one}, 1020},
          {"qwen3.5-4b-b24", 16, 4, 256, 256, std::vector<int>(24, 1), rand_prior(24, 400), {kPolicy, 96, 17}},
          {"qwen3.5-35b-rows", 16, 2, 256, 256, {3, 1, 2}, {500, 64, 0}, {kPolicy, 64, one}},
          {"more-splits-than-keys", 16, 4, 256, 256, {1, 1, 1}, {2, 0, 40}, {1, 3, 32}},
          {"d32-dv64", 8, 1, 32, 64, {1, 2}, {90, 30}, {32, 11, one}},
          {"llama-policy", 32, 8, 128, 128, std::vector<int>(40, 1), rand_prior(40, 300), {kPolicy}},
          {"mha-d64-policy", 4, 4, 64, 64, {1, 1}, {300, 1}, {kPolicy, 1}}};
  }
  for (DType d : {DType::f32, DType::bf16})
    for (const auto& c : cs) run_case(c, d);
  if (g_bench) bench_attention_decode();
}


// --- timings (--bench) ------------------------------------------------------------------------------------------
// GB/s of K/V read (the bound of a decode step), old kernel (attention_decode.cu, at the split count the engine gave
// it: ~800 blocks, ≥ 128 keys a split) against the tensor-core kernel (at attention_decode_splits' count). Random data
// (not zeros); several copies of the cache rotated so that the working set exceeds the 50 MB L2 (a decode step finds
// a layer's K/V in DRAM); 2·R calls captured in a CUDA graph, median of 7 replays (launch gaps as in the engine's
// graphs). HYLORA_ATTN_PROF=1: one call of each kernel on the first three shapes, no timing (for Nsight Compute).
namespace {
__global__ void fill_uniform(void* p, int64_t n, bool bf, uint32_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed ^ static_cast<uint32_t>(i >> 32) * 40503u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    const float v = static_cast<float>(h & 0xffffff) / 8388608.0f - 1.0f;  // [-1, 1)
    if (bf) static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
    else static_cast<float*>(p)[i] = v;
  }
}
void fill(Buf& b, DType d, uint32_t seed) {
  const int64_t n = static_cast<int64_t>(b.bytes / hc::dtype_size(d));
  fill_uniform<<<1024, 256>>>(b.p, n, d == DType::bf16, seed);
  CK(cudaGetLastError());
}

// the split count the engine gave the old kernel (backend.cpp key_splits, target 800 blocks, ≥ 128 keys a split),
// as a chunk (multiple of 32)
int64_t old_chunk(const hc::PagedAttention& p, int64_t max_context) {
  const int64_t group = p.nH / p.nKV, hg = std::min<int64_t>(group, p.Dv > 128 ? 8 : 16);
  const int64_t blocks = std::max<int64_t>(1, p.S * p.nKV * ((group + hg - 1) / hg));
  int64_t n = std::min((800 + blocks - 1) / blocks, (max_context + 127) / 128);
  n = std::max<int64_t>(1, std::min(n, (int64_t{8} << 20) / std::max<int64_t>(1, p.T * p.nH * (p.Dv + 1))));
  return std::max<int64_t>(32, ((max_context + n - 1) / n + 31) / 32 * 32);
}

// µs per call: `calls` (rotating copies) captured once, median of 7 replays
template <typename F>
double time_graph_us(F&& call, int calls, cudaStream_t st) {
  for (int i = 0; i < calls; ++i) call(i);  // warm-up (and the kernels' one-time attribute setup, outside the capture)
  CK(cudaStreamSynchronize(st));
  cudaGraph_t g;
  cudaGraphExec_t ge;
  CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < calls; ++i) call(i);
  CK(cudaStreamEndCapture(st, &g));
  CK(cudaGraphInstantiate(&ge, g, 0));
  CK(cudaGraphLaunch(ge, st));
  CK(cudaStreamSynchronize(st));
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  std::vector<float> ms(7);
  for (auto& m : ms) {
    CK(cudaEventRecord(a, st));
    CK(cudaGraphLaunch(ge, st));
    CK(cudaEventRecord(b, st));
    CK(cudaEventSynchronize(b));
    CK(cudaEventElapsedTime(&m, a, b));
  }
  std::sort(ms.begin(), ms.end());
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  CK(cudaGraphExecDestroy(ge));
  CK(cudaGraphDestroy(g));
  return ms[3] * 1e3 / calls;
}
}  // namespace

void bench_attention_decode() {
  struct B {
    const char* model;
    int64_t S, ctx, max_context, nH, nKV, D;
    DType d;
  };
  const std::vector<B> bs = {{"qwen3.5-4b", 1, 1024, 1024, 16, 4, 256, DType::bf16},
                             {"qwen3.5-35b", 1, 1024, 1024, 16, 2, 256, DType::bf16},
                             {"qwen3.5-4b", 64, 1024, 1024, 16, 4, 256, DType::bf16},
                             {"qwen3.5-35b", 64, 1024, 1024, 16, 2, 256, DType::bf16},
                             {"qwen3.5-4b", 1, 1028, 2048, 16, 4, 256, DType::bf16},
                             {"qwen3.5-35b", 1, 1028, 2048, 16, 2, 256, DType::bf16},
                             {"qwen3.5-4b", 64, 1028, 2048, 16, 4, 256, DType::bf16},
                             {"qwen3.5-4b", 1, 8192, 8192, 16, 4, 256, DType::bf16},
                             {"qwen3.5-35b", 1, 8192, 8192, 16, 2, 256, DType::bf16},
                             {"qwen3.5-4b", 64, 8192, 8192, 16, 4, 256, DType::bf16},
                             {"qwen3.5-35b", 64, 8192, 8192, 16, 2, 256, DType::bf16},
                             {"llama-gqa4", 64, 4096, 4096, 32, 8, 128, DType::bf16},
                             {"llama-gqa4", 1, 4096, 4096, 32, 8, 128, DType::bf16},
                             {"qwen3.5-4b", 64, 1024, 1024, 16, 4, 256, DType::f32},
                             {"qwen3.5-4b", 1, 1024, 1024, 16, 4, 256, DType::f32},
                             {"qwen3.5-4b", 1, 8192, 8192, 16, 4, 256, DType::f32}};
  const bool prof = std::getenv("HYLORA_ATTN_PROF") != nullptr;
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  for (size_t bi = 0; bi < (prof ? 3 : bs.size()); ++bi) {
    const B& b = bs[bi];
    const int64_t ps = 16, mp = b.max_context / ps, cp = (b.ctx + ps - 1) / ps, es = hc::dtype_size(b.d);
    const int64_t kv_bytes = b.S * b.ctx * b.nKV * 2 * b.D * es;
    // R copies of the cache (≥ 256 MB in all, ≤ 16), each sequence's pages contiguous
    const int R = prof ? 1 : static_cast<int>(std::min<int64_t>(16, std::max<int64_t>(1, (int64_t{256} << 20) / kv_bytes)));
    const int64_t pages = R * b.S * cp;
    Buf kp(pages * ps * b.nKV * b.D * es), vp(pages * ps * b.nKV * b.D * es), q(b.S * b.nH * b.D * es),
        o(b.S * b.nH * b.D * es);
    fill(kp, b.d, 1u);
    fill(vp, b.d, 2u);
    fill(q, b.d, 3u);
    std::vector<int32_t> cu(b.S + 1), cl(b.S, static_cast<int32_t>(b.ctx)), pt(R * b.S * mp, 0);
    for (int64_t s = 0; s <= b.S; ++s) cu[s] = static_cast<int32_t>(s);
    for (int r = 0; r < R; ++r)
      for (int64_t s = 0; s < b.S; ++s)
        for (int64_t j = 0; j < cp; ++j) pt[(r * b.S + s) * mp + j] = static_cast<int32_t>((r * b.S + s) * cp + j);
    Buf dcu = up_raw(cu), dcl = up_raw(cl), dpt = up_raw(pt);
    hc::PagedAttention p;
    p.q = q.p; p.ldq = b.nH * b.D; p.k_pool = kp.p; p.v_pool = vp.p; p.o = o.p; p.ldo = b.nH * b.D;
    p.cu_seqlens = dcu.as<int32_t>(); p.context_lens = dcl.as<int32_t>();
    p.S = b.S; p.T = b.S; p.nH = b.nH; p.nKV = b.nKV; p.D = b.D; p.Dv = b.D; p.page_size = ps; p.max_pages = mp;
    p.scale = 1.0f / std::sqrt(static_cast<float>(b.D));
    auto at = [&](int r) {
      hc::PagedAttention pr = p;
      pr.page_table = dpt.as<int32_t>() + static_cast<int64_t>(r) * b.S * mp;
      return pr;
    };
    // old: the split kernel at the engine's old split count
    const int64_t oc = old_chunk(p, b.max_context), on = (b.max_context + oc - 1) / oc;
    Buf wso(on > 1 ? hc::attention_decode_workspace_floats(p, b.max_context, oc) * 4 : 0);
    auto old_call = [&](int i) {
      CK(hc::attention_decode_split(b.d, at(i % R), on, oc, on > 1 ? wso.as<float>() : nullptr, st));
    };
    // new: attention_decode at attention_decode_splits' count (fp32: the old kernel is the path)
    const int64_t nn0 = hc::attention_decode_splits(b.d, p, b.max_context);
    const int64_t nc = nn0 > 0 ? (b.max_context + nn0 - 1) / nn0 : oc, nn = (b.max_context + nc - 1) / nc;
    Buf wsn(nn > 1 ? hc::attention_decode_workspace_floats(p, b.max_context, nc) * 4 : 0);
    auto new_call = [&](int i) {
      CK(hc::attention_decode(b.d, at(i % R), b.max_context, nn > 1 ? wsn.as<float>() : nullptr, st, nc));
    };
    if (prof) {
      old_call(0);
      if (nn0 > 0) new_call(0);
      CK(cudaStreamSynchronize(st));
      continue;
    }
    const int calls = std::max(2 * R, 8);
    const double us_old = time_graph_us(old_call, calls, st);
    const double gbs_old = static_cast<double>(kv_bytes) / us_old / 1e3;
    if (nn0 > 0) {
      const double us_new = time_graph_us(new_call, calls, st);
      std::printf("TIME attention decode %s %s S=%ld ctx=%ld maxctx=%ld nH=%ld nKV=%ld D=%ld: old nsplit=%ld %.1f us "
                  "(%.0f GB/s) | new nsplit=%ld %.1f us (%.0f GB/s of KV) x%.2f\n",
                  dname(b.d), b.model, (long)b.S, (long)b.ctx, (long)b.max_context, (long)b.nH, (long)b.nKV,
                  (long)b.D, (long)on, us_old, gbs_old, (long)nn, us_new, static_cast<double>(kv_bytes) / us_new / 1e3,
                  us_old / us_new);
    } else {
      std::printf("TIME attention decode %s %s S=%ld ctx=%ld maxctx=%ld nH=%ld nKV=%ld D=%ld: nsplit=%ld %.1f us "
                  "(%.0f GB/s of KV)\n", dname(b.d), b.model, (long)b.S, (long)b.ctx, (long)b.max_context, (long)b.nH,
                  (long)b.nKV, (long)b.D, (long)on, us_old, gbs_old);
    }
  }
  CK(cudaStreamDestroy(st));
}
