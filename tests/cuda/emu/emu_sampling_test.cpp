// CPU emulation of sampling.cu + sampling_split.cu (README.md): sample_tokens against the host definition
// (tests/cuda/sampling_reference.h, as in checks_sampling.cu) on random, all-equal, flat and tied rows at a misaligned
// stride, over parameter sets that reach each path of the kernel (candidate list, resolved shortcut, refined probes,
// radix fallback), once with one block per row and once split over blocks (workspace given: rows of V ≥ 4096), the
// split run also returning log-probabilities (checked against a double log-sum-exp).
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "tests/cuda/sampling_reference.h"
namespace hc = hylora::cuda;
// The one-block path leaves log-probabilities to cuda::logprobs (misc.cu, not emulated): a host stand-in.
namespace hylora::cuda {
cudaError_t logprobs(DType dt, const void* logits, int64_t ld, int64_t V, const int32_t* rows, int64_t R,
                     const int32_t* target, float* logprob, float* lse, cudaStream_t) {
  for (int64_t r = 0; r < R; ++r) {
    const int64_t row = rows ? rows[r] : r;
    auto at = [&](int64_t v) {
      return dt == DType::f32 ? static_cast<const float*>(logits)[row * ld + v]
                              : __bfloat162float(static_cast<const __nv_bfloat16*>(logits)[row * ld + v]);
    };
    double m = -INFINITY, z = 0;
    for (int64_t v = 0; v < V; ++v) m = std::max(m, (double)at(v));
    for (int64_t v = 0; v < V; ++v) z += std::exp(at(v) - m);
    logprob[r] = (float)(at(target[r]) - (m + std::log(z)));
    if (lse) lse[r] = (float)(m + std::log(z));
  }
  return cudaSuccess;
}
}  // namespace hylora::cuda
using hylora::cuda::DType;
int main() {
  std::mt19937_64 rng(7);
  int fails = 0, total = 0;
  auto bf = [](float v) { return __bfloat162float(__float2bfloat16_rn(v)); };
  struct Case { const char* name; int V; int kind; };  // kind: 0 randn*3, 1 zeros, 2 flat randn*0.01, 3 integers -3..3, 4 randn*3 large V
  for (Case c : {Case{"randn", 3000, 0}, Case{"zeros", 3000, 1}, Case{"flat", 20000, 2}, Case{"ints", 20000, 3}, Case{"randn-big", 40000, 0}, Case{"tiny", 5, 0}, Case{"small-ints", 700, 3}}) {
    for (int dt = 0; dt < 2; ++dt) {
      const int V = c.V, R = 12; const int64_t ld = V + 3;  // odd ld: misaligned rows for the head/tail path
      std::vector<float> x(R * ld);
      std::normal_distribution<float> nd;
      for (auto& v : x) {
        float t = c.kind == 0 ? nd(rng) * 3 : c.kind == 1 ? 0.f : c.kind == 2 ? nd(rng) * 0.01f : float(int(rng() % 7) - 3);
        v = dt ? bf(t) : t;
      }
      std::vector<hc::SamplingParams> P(R);
      for (int r = 0; r < R; ++r) {
        auto& p = P[r]; p.seed = 100 + r; p.step = 3 * r;
        switch (r) {
          case 0: p.temperature = 0; break;
          case 1: p.temperature = 0.8f; break;
          case 2: p.temperature = 1.0f; p.top_k = 50; break;
          case 3: p.temperature = 0.7f; p.top_p = 0.9f; break;
          case 4: p.temperature = 1.2f; p.min_p = 0.05f; break;
          case 5: p.temperature = 0.6f; p.top_k = 40; p.top_p = 0.8f; p.min_p = 0.02f; break;
          case 6: p.temperature = 0.7f; p.top_k = 9000; p.top_p = 0.95f; break;   // k beyond the list
          case 7: p.temperature = 1.5f; p.top_p = 0.01f; p.min_p = 0.3f; break;
          case 8: p.temperature = 1.0f; p.top_k = 2000; p.min_p = 0.001f; break;
          case 9: p.temperature = 1.0f; p.min_p = 1.0f; break;
          case 10: p.temperature = 1.0f; p.min_p = 2.0f; break;
          case 11: p.temperature = 0.8f; p.top_k = 3; p.top_p = 0.5f; break;
        }
      }
      std::vector<__nv_bfloat16> xb(x.size());
      for (size_t i = 0; i < x.size(); ++i) xb[i] = __float2bfloat16_rn(x[i]);
      const void* base = dt ? (const void*)xb.data() : (const void*)x.data();
      const size_t ws_bytes = hc::sample_tokens_workspace_bytes(R, V);
      for (int split = 0; split < (ws_bytes ? 2 : 1); ++split) {
        std::vector<int32_t> out(R, -1);
        std::vector<float> lp(R, NAN);
        std::vector<unsigned char> ws(split ? ws_bytes + 16 : 0);
        void* wsp = split ? (void*)((reinterpret_cast<uintptr_t>(ws.data()) + 15) / 16 * 16) : nullptr;
        if (hc::sample_tokens(dt ? DType::bf16 : DType::f32, base, ld, V, nullptr, R, P.data(), out.data(), nullptr,
                              split ? lp.data() : nullptr, wsp, ws_bytes) != cudaSuccess) {
          ++fails;
          std::printf("FAIL %s dt=%d split=%d: error\n", c.name, dt, split);
        }
        for (int r = 0; r < R; ++r) {
          const int ref = chk::host_sample(x.data() + r * ld, V, P[r]);
          ++total;
          if (ref != out[r]) { ++fails; std::printf("FAIL %s dt=%d split=%d row %d: got %d ref %d\n", c.name, dt, split, r, out[r], ref); }
          if (split) {  // log-probability of the drawn token under the raw row
            const float* xr = x.data() + r * ld;
            double m = -INFINITY, z = 0;
            for (int v = 0; v < V; ++v) m = std::max(m, (double)xr[v]);
            for (int v = 0; v < V; ++v) z += std::exp(xr[v] - m);
            const double want = xr[out[r]] - (m + std::log(z));
            ++total;
            if (!(std::fabs(lp[r] - want) <= 1e-4 * (1 + std::fabs(want)))) { ++fails; std::printf("FAIL %s dt=%d row %d: logprob %g want %g\n", c.name, dt, r, lp[r], want); }
          }
        }
        std::printf("%s dt=%d %s done\n", c.name, dt, split ? "split" : "one block"); std::fflush(stdout);
      }
    }
  }
  std::printf("%d/%d mismatches\n", fails, total);
  return fails != 0;
}
