// The host reference of token sampling: sampling.h's definition written out plainly (sort, nth_element, a scan), for
// the GPU checks (checks_sampling.cu) and the CPU emulation of the kernel (emu/emu_sampling_test.cpp). Keys and
// fixed-point masses as the kernel's (sample_key, exp(l − m)·2³²), so the kept sets are comparable bit for bit.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "ops/cuda/sampling.h"

namespace chk {
using hylora::cuda::sample_key;
using hylora::cuda::sample_uniform;
using hylora::cuda::SamplingParams;

// The token drawn from x[0, V) with P; kept_out (if given) receives the kept set's indices in order.
inline int host_sample(const float* x, int64_t V, const SamplingParams& P, std::vector<int>* kept_out = nullptr) {
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
  for (int64_t i = 0; i < V; ++i) keys[i] = sample_key(l[i]);
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
  if (P.min_p > 0.0f) thr = std::max(thr, sample_key(mx + std::log(P.min_p)));
  float bv = -INFINITY;
  int bi = 0;
  for (int64_t i = 0; i < V; ++i) {
    if (keys[i] < thr) continue;
    if (kept_out) kept_out->push_back(static_cast<int>(i));
    const float u = sample_uniform(P.seed, P.step, static_cast<uint64_t>(i));
    const float key = l[i] - std::log(-std::log(u));
    if (key > bv) {
      bv = key;
      bi = static_cast<int>(i);
    }
  }
  return bi;
}

}  // namespace chk
