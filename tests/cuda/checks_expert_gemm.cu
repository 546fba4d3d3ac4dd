// Checks of the engine's expert GEMM (ops/cuda/expert_gemm.h) against double references: decode shapes (T = 1..64
// tokens × top-8 over 256 experts, skewed routing with empty experts), a prefill shape (8192 tokens × top-8: rows
// sampled for the reference), odd shapes that take the tails and the fallback, fp32 and bf16 weights; a CUDA graph
// replayed after the routing changed; and timings (bench_expert_gemm, from --bench).
// The reference sees exactly the GPU's inputs: x rounded to bf16 where the kernel rounds it (the tensor-core path of
// bf16 weights), fp32 x elsewhere. Inputs come from a hash (cheap at 10⁹ elements), weights bf16-representable when bf16.
#include <cuda_bf16.h>

#include <algorithm>
#include <tuple>

#include "ops/cuda/expert_gemm.h"
#include "ops/cuda/extra.h"
#include "tests/cuda/check_util.h"

using namespace chk;
namespace hc = hylora::cuda;

namespace {

uint32_t mix(uint64_t i) {
  i ^= i >> 33;
  i *= 0xff51afd7ed558ccdULL;
  i ^= i >> 33;
  i *= 0xc4ceb9fe1a85ec53ULL;
  i ^= i >> 33;
  return static_cast<uint32_t>(i);
}
// Weights: m / 1024 with |m| <= 127 (exact in bf16). x: a fine grid of [-1, 1] (not bf16-representable).
float wval(uint64_t i, uint64_t seed) { return (static_cast<int>(mix(i * 7919 + seed) % 255) - 127) / 1024.0f; }
float xval(uint64_t i, uint64_t seed) { return (static_cast<int>(mix(i * 104729 + seed) % 100001) - 50000) / 50000.0f; }

// Uploads `count` weights as `wd`; keeps the (exactly representable) values in `host` when given.
Buf upload_weights(int64_t count, DType wd, uint64_t seed, std::vector<float>* host = nullptr) {
  Buf b(count * hc::dtype_size(wd));
  std::vector<float> h(count);
  for (int64_t i = 0; i < count; ++i) h[i] = wval(i, seed);
  if (wd == DType::f32) {
    CK(cudaMemcpy(b.p, h.data(), count * 4, cudaMemcpyHostToDevice));
  } else {
    std::vector<__nv_bfloat16> hb(count);
    for (int64_t i = 0; i < count; ++i) hb[i] = __float2bfloat16_rn(h[i]);
    CK(cudaMemcpy(b.p, hb.data(), count * 2, cudaMemcpyHostToDevice));
  }
  if (host) *host = std::move(h);
  return b;
}

// Top-k routing of T tokens over E experts, skewed: half of the picks among the first 16 experts; experts with
// e % 7 == 3 are never picked (empty). Returns offsets [E + 1] of the expert-sorted rows (P = T·k).
std::vector<int32_t> route(int64_t T, int64_t E, int64_t k, bool skew) {
  std::vector<int64_t> count(E, 0);
  std::vector<int32_t> picked;
  for (int64_t t = 0; t < T; ++t) {
    picked.clear();
    while (static_cast<int64_t>(picked.size()) < k) {
      int e = (skew && randint(0, 1) == 0) ? randint(0, static_cast<int>(std::min<int64_t>(E, 16)) - 1)
                                           : randint(0, static_cast<int>(E) - 1);
      if (skew && E > 7 && e % 7 == 3) continue;
      if (std::find(picked.begin(), picked.end(), e) != picked.end()) continue;
      picked.push_back(e);
    }
    for (int e : picked) ++count[e];
  }
  std::vector<int32_t> off(E + 1, 0);
  for (int64_t e = 0; e < E; ++e) off[e + 1] = static_cast<int32_t>(off[e] + count[e]);
  return off;
}

struct Shape {
  int64_t E, P, N, K;
  std::vector<int32_t> off;
};

// Runs expert_gemm on one routing and compares rows (all, or every `stride`-th plus each expert's first and last).
void run_check(const char* tag, DType wd, const Shape& s, int64_t ldx_pad, int64_t ldy_pad, int64_t stride) {
  const int64_t ldx = s.K + ldx_pad, ldy = s.N + ldy_pad;
  const uint64_t seed = mix(s.P * 31 + s.N * 7 + s.K);
  std::vector<float> xs(s.P * ldx);
  for (int64_t i = 0; i < s.P * ldx; ++i) xs[i] = xval(i, seed);
  std::vector<float> W;
  Buf dx = up(xs, DType::f32), dw = upload_weights(s.E * s.N * s.K, wd, seed, &W), doff = up_raw(s.off);
  std::vector<float> y0(s.P * ldy, 7.0f);
  Buf dy = up(y0, DType::f32);
  const int path = hc::expert_gemm_path(dx.as<float>(), ldx, wd, dw.p, s.E, s.P, s.K);
  CK(hc::expert_gemm(dx.as<float>(), ldx, wd, dw.p, doff.as<int32_t>(), s.E, dy.as<float>(), ldy, s.P, s.N, s.K,
                     nullptr));
  auto got = down(dy, s.P * ldy, DType::f32);
  const bool round_x = wd == DType::bf16 && path == 2;
  std::vector<float> g2;
  std::vector<double> ref;
  std::vector<double> xr(s.K);
  bool pad_ok = true;
  for (int64_t e = 0; e < s.E; ++e)
    for (int64_t p = s.off[e]; p < s.off[e + 1]; ++p) {
      for (int64_t n = s.N; n < ldy; ++n) pad_ok &= got[p * ldy + n] == 7.0f;
      if (p % stride != 0 && p != s.off[e] && p != s.off[e + 1] - 1) continue;
      for (int64_t kk = 0; kk < s.K; ++kk) xr[kk] = round_x ? round_dt(xs[p * ldx + kk], DType::bf16) : xs[p * ldx + kk];
      for (int64_t n = 0; n < s.N; ++n) {
        const float* wr = W.data() + (e * s.N + n) * s.K;
        double a = 0;
        for (int64_t kk = 0; kk < s.K; ++kk) a += xr[kk] * static_cast<double>(wr[kk]);
        ref.push_back(a);
        g2.push_back(got[p * ldy + n]);
      }
    }
  int empty = 0;
  for (int64_t e = 0; e < s.E; ++e) empty += s.off[e] == s.off[e + 1];
  char name[160];
  std::snprintf(name, sizeof name, "expert_gemm %s W=%s path=%d E=%ld P=%ld N=%ld K=%ld empty=%d", tag, dname(wd),
                path, (long)s.E, (long)s.P, (long)s.N, (long)s.K, empty);
  compare(name, DType::f32, g2, ref, 2e-5);  // fp32 accumulation of exact products
  expect(std::string(name) + " ld padding untouched", pad_ok);
}

// A graph captured on one routing, replayed after the offsets changed (different experts, P fixed), == eager.
void check_graph_replay(DType wd, int64_t T) {
  const int64_t E = 256, k = 8, P = T * k, N = 512, K = 256;
  Buf dx = upload_weights(P * K, DType::f32, 5), dw = upload_weights(E * N * K, wd, 6);
  auto off1 = route(T, E, k, true), off2 = route(T, E, k, false);
  Buf doff = up_raw(off1), dy(P * N * 4), dy2(P * N * 4);
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  cudaGraph_t g;
  cudaGraphExec_t ge;
  CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
  CK(hc::expert_gemm(dx.as<float>(), K, wd, dw.p, doff.as<int32_t>(), E, dy.as<float>(), N, P, N, K, st));
  CK(cudaStreamEndCapture(st, &g));
  CK(cudaGraphInstantiate(&ge, g, 0));
  CK(cudaMemcpyAsync(doff.p, off2.data(), off2.size() * 4, cudaMemcpyHostToDevice, st));
  CK(cudaGraphLaunch(ge, st));
  CK(cudaStreamSynchronize(st));
  auto got = down(dy, P * N, DType::f32);
  CK(hc::expert_gemm(dx.as<float>(), K, wd, dw.p, doff.as<int32_t>(), E, dy2.as<float>(), N, P, N, K, st));
  CK(cudaStreamSynchronize(st));
  auto want = down(dy2, P * N, DType::f32);
  char name[128];
  std::snprintf(name, sizeof name, "expert_gemm graph replay after re-routing W=%s T=%ld", dname(wd), (long)T);
  expect(name, got == want);
  cudaGraphExecDestroy(ge);
  cudaGraphDestroy(g);
  cudaStreamDestroy(st);
}

}  // namespace

void check_expert_gemm() {
  const int64_t k = 8, E = 256;
  for (DType wd : {DType::bf16, DType::f32}) {
    // Qwen3.5-35B-A3B experts: gate_up [E, 1024, 2048], down [E, 2048, 512].
    const std::vector<int64_t> Ts = g_small ? std::vector<int64_t>{1, 3} : std::vector<int64_t>{1, 2, 7, 64, 200};
    for (int64_t T : Ts) {
      auto off = route(T, E, k, true);
      const int64_t P = T * k;
      if (g_small) {
        run_check("decode", wd, {E, P, 96, 64, off}, 4, 3, 1);
        continue;
      }
      run_check("decode up", wd, {E, P, 1024, 2048, off}, 0, 0, T > 64 ? 7 : 1);
      run_check("decode down", wd, {E, P, 2048, 512, off}, 0, 0, T > 64 ? 7 : 1);
    }
    // prefill: 8192 tokens (P = 65536), a sample of rows
    {
      const int64_t T = g_small ? 300 : 8192, P = T * k;
      auto off = route(T, E, k, true);
      if (g_small) {
        run_check("prefill", wd, {E, P, 160, 72, off}, 4, 1, 5);
      } else {
        run_check("prefill up", wd, {E, P, 1024, 2048, off}, 0, 0, 127);
        run_check("prefill down", wd, {E, P, 2048, 512, off}, 0, 0, 127);
      }
    }
    // small-model shapes (the golden fixtures: few experts), tails of N and K, padded ld, and the fallback
    // (K = 36: not a multiple of 8 bf16 weights; ldx odd).
    struct Small { int64_t E, T, N, K, ldx_pad; };
    for (Small q : std::vector<Small>{
             {4, 3, 96, 200, 4}, {8, 40, 100, 136, 0}, {4, 300, 130, 40, 8}, {4, 5, 50, 36, 0}, {6, 9, 24, 64, 1}}) {
      auto off = route(q.T, q.E, 2, false);
      run_check("small", wd, {q.E, q.T * 2, q.N, q.K, off}, q.ldx_pad, 5, 1);
    }
    for (int64_t T : {3, 64, 300}) check_graph_replay(wd, T);  // decode by rank, decode direct, prefill
  }
}

// Timings of the Qwen3.5-35B-A3B expert projections (uniform random top-8 over 256 experts).
void bench_expert_gemm() {
  const int64_t E = 256, k = 8;
  for (DType wd : {DType::bf16, DType::f32}) {
    for (int64_t T : {1L, 8L, 64L, 256L, 8192L}) {
      if (wd == DType::f32 && T != 1 && T != 64 && T != 8192) continue;
      const int64_t P = T * k;
      auto off = route(T, E, k, false);
      int64_t active = 0;
      for (int64_t e = 0; e < E; ++e) active += off[e + 1] > off[e];
      Buf doff = up_raw(off);
      struct Proj { int64_t N, K; const char* what; };
      for (Proj pj : {Proj{1024, 2048, "gate_up"}, Proj{2048, 512, "down"}}) {
        const int64_t N = pj.N, K = pj.K;
        const char* what = pj.what;
        Buf x(P * K * 4), y(P * N * 4), w(E * N * K * hc::dtype_size(wd));
        CK(cudaMemset(x.p, 0, x.bytes));
        CK(cudaMemset(w.p, 0, w.bytes));
        auto run = [&](bool naive) {
          if (naive)
            CK(hc::extra::expert_gemm(x.as<float>(), K, wd, w.p, doff.as<int32_t>(), E, y.as<float>(), N, P, N, K,
                                      nullptr));
          else
            CK(hc::expert_gemm(x.as<float>(), K, wd, w.p, doff.as<int32_t>(), E, y.as<float>(), N, P, N, K, nullptr));
        };
        const int reps = T >= 8192 ? 3 : 50;
        double ms[2];
        for (int naive = 0; naive < 2; ++naive) {
          if (naive && T > 64) {
            ms[1] = 0;
            continue;
          }
          ms[naive] = time_ms([&] { run(naive); }, reps);
        }
        const double wbytes = static_cast<double>(active) * N * K * hc::dtype_size(wd);
        std::printf("TIME expert_gemm W=%s %s T=%ld P=%ld E=256 N=%ld K=%ld path=%d: %.4f ms (%.0f GB/s of %ld "
                    "routed experts' weights, %.1f TFLOP/s); naive %.4f ms\n",
                    dname(wd), what, (long)T, (long)P, (long)N, (long)K,
                    hc::expert_gemm_path(x.as<float>(), K, wd, w.p, E, P, K), ms[0], wbytes / ms[0] / 1e6,
                    (long)active, 2.0 * P * N * K / ms[0] / 1e9, ms[1]);
        std::fflush(stdout);
      }
    }
  }
}
