// Host sampler: greedy = argmax with the lowest id on ties; seeded draws depend only on (seed, position); filters
// (top_k, top_p, min_p) cut the candidates they should; logprobs are the fp64 log-softmax of the raw logits.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/error.h"
#include "engine/sampler.h"

namespace hylora {
namespace {

TEST(Sampler, GreedyTakesTheLowestIdAmongTies) {
  std::vector<float> l = {0.5f, 2.0f, -1.0f, 2.0f};
  SamplingParams p;
  p.temperature = 0;
  EXPECT_EQ(sample_token(l.data(), 4, p, 0, 0).id, 1);
}

TEST(Sampler, LogprobsAreTheLogSoftmaxInFp64WithTopAlternatives) {
  std::vector<float> l = {1.0f, 3.0f, 2.0f};
  SamplingParams p;
  p.temperature = 0;
  SampledToken t = sample_token(l.data(), 3, p, 0, 2);
  const double lse = std::log(std::exp(1.0) + std::exp(3.0) + std::exp(2.0));
  EXPECT_NEAR(t.logprob, 3.0 - lse, 1e-12);
  ASSERT_EQ(t.top.size(), 2u);
  EXPECT_EQ(t.top[0].id, 1);
  EXPECT_EQ(t.top[1].id, 2);
  EXPECT_NEAR(t.top[1].logprob, 2.0 - lse, 1e-12);
}

TEST(Sampler, SeededDrawsDependOnlyOnSeedAndPosition) {
  std::vector<float> l(50);
  for (int i = 0; i < 50; ++i) l[i] = static_cast<float>(std::sin(i * 1.7));
  SamplingParams p;
  p.temperature = 1.0;
  p.seed = 42;
  std::vector<int32_t> a, b;
  for (int pos = 0; pos < 64; ++pos) a.push_back(sample_token(l.data(), 50, p, pos, 0).id);
  for (int pos = 0; pos < 64; ++pos) b.push_back(sample_token(l.data(), 50, p, pos, 0).id);
  EXPECT_EQ(a, b);
  p.seed = 43;
  std::vector<int32_t> c;
  for (int pos = 0; pos < 64; ++pos) c.push_back(sample_token(l.data(), 50, p, pos, 0).id);
  EXPECT_NE(a, c);
  EXPECT_GT(std::set<int32_t>(a.begin(), a.end()).size(), 5u);  // it does sample
}

TEST(Sampler, FiltersCutTheCandidates) {
  std::vector<float> l = {0.0f, 1.0f, 3.0f, 2.9f, -5.0f};
  SamplingParams p;
  p.temperature = 1.0;
  std::map<int32_t, int> seen;
  p.top_k = 2;
  for (int pos = 0; pos < 400; ++pos) ++seen[sample_token(l.data(), 5, p, pos, 0).id];
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen.count(2) && seen.count(3));
  seen.clear();
  p.top_k = 0;
  p.top_p = 0.01;  // only the most likely token
  for (int pos = 0; pos < 100; ++pos) ++seen[sample_token(l.data(), 5, p, pos, 0).id];
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen.count(2));
  seen.clear();
  p.top_p = 1;
  p.min_p = 0.5;  // p >= 0.5 * p_max: tokens 2 and 3 only
  for (int pos = 0; pos < 400; ++pos) ++seen[sample_token(l.data(), 5, p, pos, 0).id];
  EXPECT_EQ(seen.size(), 2u);
  seen.clear();
  p.min_p = 0;
  p.temperature = 1e-3;  // a tiny temperature is greedy in effect
  for (int pos = 0; pos < 100; ++pos) ++seen[sample_token(l.data(), 5, p, pos, 0).id];
  EXPECT_EQ(seen.size(), 1u);
}

TEST(Sampler, InvalidParamsAreRefused) {
  SamplingParams p;
  p.temperature = -1;
  EXPECT_THROW(validate_sampling_params(p), Error);
  p.temperature = 1;
  p.top_p = 0;
  EXPECT_THROW(validate_sampling_params(p), Error);
  p.top_p = 1;
  p.min_p = 2;
  EXPECT_THROW(validate_sampling_params(p), Error);
}

}  // namespace
}  // namespace hylora
