// Checks of token sampling: exact agreement with a host implementation of the same definition (sampling.h) on
// greedy / temperature / top-k / top-p / min-p rows over a real vocabulary size, and a distribution test (100k
// seeded draws of one row vs the renormalised kept probabilities, total-variation distance).
#include <map>

#include "ops/cuda/sampling.h"
#include "tests/cuda/check_util.h"

using namespace chk;
namespace hc = hylora::cuda;

namespace {
uint32_t fkey(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// host version of the definition; also returns the kept set
int host_sample(const float* x, int64_t V, const hc::SamplingParams& P, std::vector<int>* kept_out = nullptr) {
  if (!(P.temperature > 0.0f)) {
    int bi = 0;
    for (int64_t i = 1; i < V; ++i)
      if (x[i] > x[bi]) bi = static_cast<int>(i);
    return bi;
  }
  std::vector<float> l(V);
  float mx = -INFINITY;
  for (int64_t i = 0; i < V; ++i) mx = std::max(mx, l[i] = x[i] / P.temperature);
  uint32_t thr = 0;
  std::vector<uint32_t> keys(V);
  for (int64_t i = 0; i < V; ++i) keys[i] = fkey(l[i]);
  if (P.top_k > 0 && P.top_k < V) {
    std::vector<uint32_t> sk(keys);
    std::nth_element(sk.begin(), sk.begin() + (P.top_k - 1), sk.end(), std::greater<uint32_t>());
    thr = sk[P.top_k - 1];
  }
  if (P.top_p > 0.0f && P.top_p < 1.0f) {
    std::vector<std::pair<uint32_t, unsigned long long>> km;
    unsigned long long total = 0;
    for (int64_t i = 0; i < V; ++i)
      if (keys[i] >= thr) {
        const auto m = static_cast<unsigned long long>(std::exp(l[i] - mx) * 4294967296.0f);
        km.push_back({keys[i], m});
        total += m;
      }
    std::sort(km.begin(), km.end(), [](auto& a, auto& b) { return a.first > b.first; });
    unsigned long long target = static_cast<unsigned long long>(std::ceil((double)total * (double)P.top_p));
    if (target == 0) target = 1;
    unsigned long long cum = 0;
    uint32_t tp = km.back().first;
    for (size_t i = 0; i < km.size(); ++i) {
      cum += km[i].second;
      if (cum >= target) {
        tp = km[i].first;
        break;
      }
    }
    thr = std::max(thr, tp);
  }
  if (P.min_p > 0.0f) thr = std::max(thr, fkey(mx + std::log(P.min_p)));
  float bv = -INFINITY;
  int bi = 0;
  for (int64_t i = 0; i < V; ++i) {
    if (keys[i] < thr) continue;
    if (kept_out) kept_out->push_back(static_cast<int>(i));
    const float u = hc::sample_uniform(P.seed, P.step, static_cast<uint64_t>(i));
    const float key = l[i] - std::log(-std::log(u));
    if (key > bv) {
      bv = key;
      bi = static_cast<int>(i);
    }
  }
  return bi;
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
    Buf dl = up(lg, d), dr = up_raw(rows), out(nrows * 4);
    Buf dp(nrows * sizeof(hc::SamplingParams));
    CK(cudaMemcpy(dp.p, P.data(), dp.bytes, cudaMemcpyHostToDevice));
    CK(hc::sample_tokens(d, dl.p, ld, V, dr.as<int32_t>(), nrows, dp.as<hc::SamplingParams>(), out.as<int32_t>(),
                         nullptr));
    auto got = down_raw<int32_t>(out, nrows);
    int mism = 0;
    std::string detail;
    for (int64_t r = 0; r < nrows; ++r) {
      const int ref = host_sample(lg.data() + rows[r] * ld, V, P[r]);
      if (ref != got[r]) {
        ++mism;
        detail += " row" + std::to_string(r) + ":" + std::to_string(got[r]) + "!=" + std::to_string(ref);
      }
    }
    expect(std::string("sample_tokens V=") + std::to_string(V) + " rows=" + std::to_string(nrows) + " " + dname(d) +
               " (greedy/temp/top-k/top-p/min-p) equal to host",
           mism == 0, std::to_string(mism) + " mismatches" + detail);
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
}
