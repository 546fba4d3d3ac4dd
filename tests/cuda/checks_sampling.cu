// Checks of token sampling: exact agreement with a host implementation of the same definition (sampling.h) on
// greedy / temperature / top-k / top-p / min-p rows over a real vocabulary size; rows built to reach every path of
// the kernel (sampling.cu's file comment) on misaligned rows: the candidate list (random logits), the resolved
// shortcut (all-equal logits, ties at the max), the refined probes and the radix fallback (flat rows: top-p keeps
// most of the vocabulary; top-k above the list's capacity), many ties at the thresholds (integer logits); and a
// distribution test (100k seeded draws of one row vs the renormalised kept probabilities, total-variation distance).
// Every draw also runs with rows split over blocks (sample_tokens' workspace) and returns log-probabilities.
// With --bench: the kernel's time on 64 rows of 151 936 per row kind and mode, and one block a row vs split rows at
// decode batch sizes.
#include "ops/cuda/misc.h"
#include "ops/cuda/sampling.h"
#include "tests/cuda/check_util.h"
#include "tests/cuda/sampling_reference.h"

using namespace chk;
namespace hc = hylora::cuda;

namespace {
enum class Rows { random, equal, flat, ties };
const char* rows_name(Rows k) {
  return k == Rows::random ? "random (randn x3)" : k == Rows::equal ? "all-equal" : k == Rows::flat ? "flat (randn x0.01)"
                                                                                                      : "ties (integers -3..3)";
}
std::vector<float> shaped_logits(Rows k, size_t n, DType d) {
  switch (k) {
    case Rows::random: return randn(n, 3.0f, d);
    case Rows::equal: return std::vector<float>(n, 0.0f);
    case Rows::flat: return randn(n, 0.01f, d);
    case Rows::ties: {
      std::vector<float> v(n);
      for (auto& x : v) x = static_cast<float>(randint(-3, 3));
      return v;
    }
  }
  return {};
}
// Parameter sets of the path checks (comments: the path each takes on flat rows, where the choice is hardest).
std::vector<hc::SamplingParams> path_params() {
  std::vector<hc::SamplingParams> P(12);
  auto set = [&](int r, float t, int k, float p, float mp) {
    P[r].temperature = t;
    P[r].top_k = k;
    P[r].top_p = p;
    P[r].min_p = mp;
    P[r].seed = 77 + r;
    P[r].step = 5 * r + 1;
  };
  set(0, 0.0f, 0, 1.0f, 0.0f);      // greedy
  set(1, 0.9f, 0, 1.0f, 0.0f);      // plain temperature
  set(2, 1.0f, 50, 1.0f, 0.0f);     // top-k (flat: refined probes)
  set(3, 0.7f, 0, 0.9f, 0.0f);      // top-p (flat: keeps most of the row -> radix fallback)
  set(4, 1.2f, 0, 1.0f, 0.05f);     // min-p alone
  set(5, 0.6f, 40, 0.8f, 0.02f);    // all three
  set(6, 0.7f, 9000, 0.95f, 0.0f);  // top-k above the list's capacity -> radix fallback (top-k then top-p)
  set(7, 1.5f, 0, 0.01f, 0.3f);     // top-p + min-p
  set(8, 1.0f, 2000, 1.0f, 0.001f); // top-k + min-p
  set(9, 1.0f, 0, 1.0f, 1.0f);      // min-p 1: only the ties at the max
  set(10, 1.0f, 0, 1.0f, 2.0f);     // min-p > 1: nothing kept -> token 0
  set(11, 0.8f, 3, 0.5f, 0.0f);     // top-k 3 + top-p (ties rows: thresholds inside a run of equal keys)
  return P;
}

// log Σ exp(x) of a row, in double
double host_lse(const float* x, int64_t V) {
  double m = -INFINITY, z = 0;
  for (int64_t v = 0; v < V; ++v) m = std::max(m, static_cast<double>(x[v]));
  for (int64_t v = 0; v < V; ++v) z += std::exp(x[v] - m);
  return m + std::log(z);
}

// Draws of R rows (rows[r] of lg, or r) with and without splitting rows over blocks (sample_tokens' workspace), both
// against host_sample; the split run also returns each drawn token's log-probability, checked against a double
// log-sum-exp. `what` names the case.
void expect_draws(const std::string& what, const std::vector<float>& lg, DType d, int64_t ld, int64_t V,
                  const std::vector<int32_t>& rows, const std::vector<hc::SamplingParams>& P) {
  const int64_t R = static_cast<int64_t>(P.size());
  Buf dl = up(lg, d), dr = up_raw(rows.empty() ? std::vector<int32_t>(1, 0) : rows), out(R * 4), lp(R * 4),
      dp = up_raw(P);
  const size_t ws_bytes = hc::sample_tokens_workspace_bytes(R, V);
  Buf ws(ws_bytes ? ws_bytes : 16);
  const int32_t* drows = rows.empty() ? nullptr : dr.as<int32_t>();
  for (int split = 0; split < 2; ++split) {
    CK(hc::sample_tokens(d, dl.p, ld, V, drows, R, dp.as<hc::SamplingParams>(), out.as<int32_t>(), nullptr,
                         lp.as<float>(), split ? ws.p : nullptr, split ? ws_bytes : 0));
    auto got = down_raw<int32_t>(out, R);
    auto lps = down_raw<float>(lp, R);
    int mism = 0, lp_bad = 0;
    std::string detail;
    for (int64_t r = 0; r < R; ++r) {
      const float* x = lg.data() + (rows.empty() ? r : rows[r]) * ld;
      const int ref = host_sample(x, V, P[r]);
      if (ref != got[r]) {
        ++mism;
        detail += " row" + std::to_string(r) + ":" + std::to_string(got[r]) + "!=" + std::to_string(ref);
      }
      const double want = x[got[r]] - host_lse(x, V);
      if (!(std::fabs(lps[r] - want) <= 2e-5 * (1.0 + std::fabs(want)))) {
        ++lp_bad;
        detail += " logprob" + std::to_string(r) + ":" + std::to_string(lps[r]) + "!=" + std::to_string(want);
      }
    }
    const std::string how = !split ? "one block a row" : ws_bytes ? "rows split over blocks" : "no split offered";
    expect(what + " " + dname(d) + ", " + how + ": tokens equal to host, log-probabilities within 2e-5",
           mism == 0 && lp_bad == 0, std::to_string(mism) + " token / " + std::to_string(lp_bad) +
                                         " log-probability mismatches" + detail);
  }
}

// Every row kind x parameter set x dtype on rows at a misaligned stride (ld = V + 3: the 16-byte loads' head and
// tail); V above the list's capacity (8192) also in --small so that the fallback runs under the sanitizers. 12 rows:
// the split path runs too (each row over ~20 blocks).
void check_paths() {
  const int64_t V = g_small ? 20000 : 151936, ld = V + 3;
  const auto P = path_params();
  const int64_t nrows = static_cast<int64_t>(P.size());
  for (Rows kind : {Rows::random, Rows::equal, Rows::flat, Rows::ties})
    for (DType d : {DType::f32, DType::bf16})
      expect_draws(std::string("sample_tokens paths V=") + std::to_string(V) + " " + rows_name(kind) +
                       " (12 parameter sets)",
                   shaped_logits(kind, nrows * ld, d), d, ld, V, {}, P);
  // one row (decode batch 1: the widest split), every parameter set, the engine's fp32 logits
  for (size_t k = 0; k < P.size(); ++k)
    expect_draws("sample_tokens one row V=" + std::to_string(V) + " parameter set " + std::to_string(k),
                 shaped_logits(k % 2 ? Rows::flat : Rows::random, ld, DType::f32), DType::f32, ld, V, {}, {P[k]});
}

// Decode-sized draws (fp32 rows of Qwen3.5's 248 320 vocabulary, as the engine hands them over): one block a row vs
// rows split over blocks, with and without the drawn tokens' log-probabilities.
void bench_split() {
  const int64_t V = 248320;
  struct Mode {
    const char* name;
    float t;
    int k;
    float p, mp;
  };
  const Mode modes[] = {{"greedy", 0.0f, 0, 1.0f, 0.0f},
                        {"temperature 1", 1.0f, 0, 1.0f, 0.0f},
                        {"top-k 20 + top-p 0.95 (Qwen3.5's defaults)", 0.6f, 20, 0.95f, 0.0f},
                        {"min-p 0.05", 1.0f, 0, 1.0f, 0.05f}};
  for (int64_t R : {1, 8, 64}) {
    Buf lg = up(randn(R * V, 3.0f, DType::f32), DType::f32), out(R * 4), lp(R * 4);
    const size_t ws_bytes = hc::sample_tokens_workspace_bytes(R, V);
    Buf ws(ws_bytes ? ws_bytes : 16);
    for (const Mode& m : modes) {
      std::vector<hc::SamplingParams> P(R);
      for (int64_t r = 0; r < R; ++r) {
        P[r].temperature = m.t;
        P[r].top_k = m.k;
        P[r].top_p = m.p;
        P[r].min_p = m.mp;
        P[r].seed = 5 + r;
      }
      Buf dp = up_raw(P);
      double ms[2][2];
      for (int split = 0; split < 2; ++split)
        for (int with_lp = 0; with_lp < 2; ++with_lp)
          ms[split][with_lp] = time_ms(
              [&] {
                CK(hc::sample_tokens(DType::f32, lg.p, V, V, nullptr, R, dp.as<hc::SamplingParams>(),
                                     out.as<int32_t>(), nullptr, with_lp ? lp.as<float>() : nullptr,
                                     split ? ws.p : nullptr, split ? ws_bytes : 0));
              },
              50);
      std::printf("TIME sample_tokens f32 %lld x %lld, %s: one block a row %.1f us (+logprob %.1f), split %.1f us "
                  "(+logprob %.1f)%s\n",
                  static_cast<long long>(R), static_cast<long long>(V), m.name, 1e3 * ms[0][0], 1e3 * ms[0][1],
                  1e3 * ms[1][0], 1e3 * ms[1][1], ws_bytes ? "" : " [no split at this R]");
    }
  }
}


// 64 rows x 151 936 bf16: the all-equal rows of the earlier TIME line (the previous kernel's worst case), random rows
// per mode, flat rows (refined probes / radix fallback). The previous kernel (4 radix passes over the whole row per
// threshold) and its old-vs-new timings are in the session 7 logs; commit 40db0cd still has it.
void bench_sampling() {
  const int64_t R = 64, V = 151936;
  Buf out(R * 4), lp(R * 4), tg(R * 4);
  CK(cudaMemset(tg.p, 0, tg.bytes));
  struct Mode {
    const char* name;
    float t;
    int k;
    float p, mp;
  };
  const Mode modes[] = {{"top-k 50, top-p 0.9, min-p", 0.7f, 50, 0.9f, 0.01f},
                        {"top-k 50", 1.0f, 50, 1.0f, 0.0f},
                        {"top-p 0.9", 0.7f, 0, 0.9f, 0.0f},
                        {"min-p 0.05", 1.0f, 0, 1.0f, 0.05f},
                        {"temperature only", 0.8f, 0, 1.0f, 0.0f},
                        {"greedy", 0.0f, 0, 1.0f, 0.0f}};
  for (Rows kind : {Rows::equal, Rows::random, Rows::flat}) {
    Buf lg = up(shaped_logits(kind, R * V, DType::bf16), DType::bf16);
    for (const Mode& m : modes) {
      if (kind != Rows::random && m.k == 0 && m.p >= 1.0f) continue;  // filter-free modes: only on random rows
      std::vector<hc::SamplingParams> P(R);
      for (int64_t r = 0; r < R; ++r) {
        P[r].temperature = m.t;
        P[r].top_k = m.k;
        P[r].top_p = m.p;
        P[r].min_p = m.mp;
        P[r].seed = 9 + r;
        P[r].step = 3;
      }
      Buf dp = up_raw(P);
      const double ms = time_ms([&] {
        CK(hc::sample_tokens(DType::bf16, lg.p, V, V, nullptr, R, dp.as<hc::SamplingParams>(), out.as<int32_t>(),
                             nullptr));
      });
      if (kind == Rows::equal && m.k == 50 && m.p < 1.0f) {  // the earlier TIME line, same format
        const double ms_l = time_ms([&] {
          CK(hc::logprobs(DType::bf16, lg.p, V, V, nullptr, R, tg.as<int32_t>(), lp.as<float>(), nullptr, nullptr));
        });
        std::printf("TIME sample_tokens bf16 64 rows x 151936 (top-k 50, top-p 0.9, min-p): %.3f ms; logprobs: %.3f ms\n",
                    ms, ms_l);
      }
      std::printf("TIME sample_tokens bf16 64 x 151936 %s rows, %s: %.3f ms\n", rows_name(kind), m.name, ms);
    }
  }
}
}  // namespace

void check_sampling() {
  for (DType d : {DType::f32, DType::bf16}) {
    const int64_t V = g_small ? 3000 : 151936, nrows = g_small ? 6 : 48, ld = V + 16;
    auto lg = randn(nrows * ld, 3.0f, d);
    std::vector<hc::SamplingParams> P(nrows);
    std::vector<int32_t> rows(nrows);
    for (int64_t r = 0; r < nrows; ++r) {
      rows[r] = static_cast<int32_t>(nrows - 1 - r);
      auto& p = P[r];
      p.seed = 1000 + r;
      p.step = 7 * r;
      switch (r % 8) {
        case 0: p.temperature = 0.0f; break;                                   // greedy
        case 1: p.temperature = 0.8f; break;                                   // plain
        case 2: p.temperature = 1.0f; p.top_k = 50; break;
        case 3: p.temperature = 0.7f; p.top_p = 0.9f; break;
        case 4: p.temperature = 1.2f; p.min_p = 0.05f; break;
        case 5: p.temperature = 0.6f; p.top_k = 40; p.top_p = 0.8f; p.min_p = 0.02f; break;
        case 6: p.temperature = 1.0f; p.top_k = 1; break;                      // = greedy
        case 7: p.temperature = 1.5f; p.top_p = 0.01f; break;                  // one token
      }
    }
    expect_draws(std::string("sample_tokens V=") + std::to_string(V) + " rows=" + std::to_string(nrows) +
                     " (greedy/temp/top-k/top-p/min-p, rows permuted)",
                 lg, d, ld, V, rows, P);
  }
  // distribution: one row, many seeded draws
  {
    const int64_t V = 20, N = g_small ? 2000 : 100000;
    auto lg = randn(V, 1.5f, DType::f32);
    hc::SamplingParams p;
    p.temperature = 1.3f;
    p.top_k = 15;
    p.top_p = 0.85f;
    p.min_p = 0.02f;
    p.seed = 42;
    std::vector<hc::SamplingParams> P(N, p);
    for (int64_t i = 0; i < N; ++i) P[i].step = static_cast<uint64_t>(i);
    std::vector<int32_t> rows(N, 0);
    Buf dl = up(lg, DType::f32), dr = up_raw(rows), out(N * 4), dp(N * sizeof(hc::SamplingParams));
    CK(cudaMemcpy(dp.p, P.data(), dp.bytes, cudaMemcpyHostToDevice));
    CK(hc::sample_tokens(DType::f32, dl.p, V, V, dr.as<int32_t>(), N, dp.as<hc::SamplingParams>(), out.as<int32_t>(),
                         nullptr));
    auto got = down_raw<int32_t>(out, N);
    std::vector<int> kept;
    host_sample(lg.data(), V, p, &kept);
    std::vector<double> prob(V, 0.0), freq(V, 0.0);
    double z = 0, mx = -1e300;
    for (int i : kept) mx = std::max(mx, (double)(lg[i] / p.temperature));
    for (int i : kept) z += (prob[i] = std::exp(lg[i] / p.temperature - mx));
    for (auto& v : prob) v /= z;
    for (auto t : got) freq[t] += 1.0 / N;
    double tv = 0;
    for (int64_t i = 0; i < V; ++i) tv += 0.5 * std::fabs(freq[i] - prob[i]);
    expect("sample_tokens distribution V=20 kept=" + std::to_string(kept.size()) + " draws=" + std::to_string(N),
           tv < (g_small ? 0.08 : 0.015), "total variation " + std::to_string(tv));
  }
  check_paths();
  if (g_bench) {
    bench_sampling();
    bench_split();
  }
}
