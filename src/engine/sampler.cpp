#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace hylora {

namespace {

// splitmix64: a stateless mix of (seed, position) into 64 random bits, so a request's draw at a position does not
// depend on how many draws happened before it (preemption and recompute give the same tokens).
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

double uniform01(uint64_t seed, int64_t position) {
  const uint64_t bits = mix(mix(seed) ^ static_cast<uint64_t>(position) * 0xD1B54A32D192ED03ull);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;  // [0, 1)
}

// Ids ordered by logit descending, lowest id first on ties.
std::vector<int32_t> order_by_logit(const float* logits, int64_t vocab, int64_t keep) {
  std::vector<int32_t> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  keep = std::min<int64_t>(keep, vocab);
  std::partial_sort(ids.begin(), ids.begin() + keep, ids.end(), better);
  ids.resize(keep);
  return ids;
}

}  // namespace

void validate_sampling_params(const SamplingParams& p) {
  HYLORA_CHECK(std::isfinite(p.temperature) && p.temperature >= 0, "temperature must be >= 0, got ", p.temperature);
  HYLORA_CHECK(std::isfinite(p.top_p) && p.top_p > 0 && p.top_p <= 1, "top_p must be in (0, 1], got ", p.top_p);
  HYLORA_CHECK(std::isfinite(p.min_p) && p.min_p >= 0 && p.min_p <= 1, "min_p must be in [0, 1], got ", p.min_p);
}

std::vector<double> log_softmax(const float* logits, int64_t vocab) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  const double lse = mx + std::log(sum);
  std::vector<double> out(vocab);
  for (int64_t i = 0; i < vocab; ++i) out[i] = static_cast<double>(logits[i]) - lse;
  return out;
}

SampledToken sample_token(const float* logits, int64_t vocab, const SamplingParams& p, int64_t position,
                          int64_t top_n) {
  HYLORA_CHECK(vocab > 0, "empty logits row");
  SampledToken out;
  if (p.temperature == 0) {
    int32_t best = 0;
    for (int64_t i = 1; i < vocab; ++i)
      if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
    out.id = best;
  } else {
    // Candidates best first; top_k cuts the list, then probabilities at temperature T (fp64) are renormalised
    // over the candidates, and top_p / min_p cut it further.
    const int64_t k = p.top_k > 0 ? std::min(p.top_k, vocab) : vocab;
    std::vector<int32_t> cand = order_by_logit(logits, vocab, k);
    const double mx = logits[cand[0]];
    std::vector<double> prob(cand.size());
    double sum = 0;
    for (size_t i = 0; i < cand.size(); ++i) sum += prob[i] = std::exp((logits[cand[i]] - mx) / p.temperature);
    for (double& x : prob) x /= sum;
    size_t n = cand.size();
    if (p.top_p < 1) {
      double cum = 0;
      for (size_t i = 0; i < n; ++i) {
        cum += prob[i];
        if (cum >= p.top_p) {
          n = i + 1;
          break;
        }
      }
    }
    if (p.min_p > 0) {
      const double floor = p.min_p * prob[0];
      size_t m = 1;
      while (m < n && prob[m] >= floor) ++m;
      n = m;
    }
    double kept = 0;
    for (size_t i = 0; i < n; ++i) kept += prob[i];
    const double u = uniform01(p.seed, position) * kept;
    double cum = 0;
    out.id = cand[n - 1];
    for (size_t i = 0; i < n; ++i) {
      cum += prob[i];
      if (u < cum) {
        out.id = cand[i];
        break;
      }
    }
  }
  return describe_token(logits, vocab, out.id, top_n);
}

SampledToken describe_token(const float* logits, int64_t vocab, int32_t id, int64_t top_n) {
  HYLORA_CHECK(vocab > 0 && id >= 0 && id < vocab, "internal: token ", id, " outside a vocabulary of ", vocab);
  const std::vector<double> lp = log_softmax(logits, vocab);
  SampledToken out;
  out.id = id;
  out.logprob = lp[id];
  if (top_n > 0)
    for (int32_t t : order_by_logit(logits, vocab, top_n)) out.top.push_back({t, lp[t]});
  return out;
}

}  // namespace hylora
