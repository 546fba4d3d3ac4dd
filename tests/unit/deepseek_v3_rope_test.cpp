// DeepSeek-V3 rotary details: YaRN inverse frequencies, the cos/sin attention scaling and the softmax mscale
// against values computed here in double from the YaRN formula (independently of the engine's float32 steps), and
// the interleaved RoPE (HF apply_rotary_pos_emb_interleave) against its direct pairwise definition.
#include <gtest/gtest.h>

#include "test_support.h"

#include <cmath>
#include <random>

#include "models/deepseek_v3_config.h"
#include "ops/rope.h"
#include "ops/rope_interleave.h"

using namespace hylora;
using namespace hylora::deepseek_v3;

namespace {

// YaRN (Peng et al. 2023, as in HF): dims whose wavelength is short (index below `low`) keep the original
// frequency, long ones (above `high`) are divided by `factor`, with a linear ramp in between.
std::vector<double> yarn_reference(int64_t dim, double base, double factor, double beta_fast, double beta_slow,
                                   double orig_max, bool truncate) {
  auto corr = [&](double rot) { return dim * std::log(orig_max / (rot * 2 * M_PI)) / (2 * std::log(base)); };
  double low = corr(beta_fast), high = corr(beta_slow);
  if (truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, dim - 1.0);
  if (low == high) high += 0.001;
  std::vector<double> out;
  for (int64_t i = 0; i < dim / 2; ++i) {
    const double f = std::pow(base, -2.0 * i / dim);
    const double ramp = std::min(1.0, std::max(0.0, (i - low) / (high - low)));
    out.push_back(f / factor * ramp + f * (1.0 - ramp));
  }
  return out;
}

RopeConfig yarn(double theta, double factor, double beta_fast, double beta_slow, double mscale, double mscale_all) {
  RopeConfig r;
  r.type = "yarn";
  r.theta = theta;
  r.factor = factor;
  r.beta_fast = beta_fast;
  r.beta_slow = beta_slow;
  r.original_max_position_embeddings = 4096;
  r.mscale = mscale;
  r.mscale_all_dim = mscale_all;
  return r;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 2e-6 * want[i]) << "index " << i;
}

}  // namespace

TEST(DeepseekV3Yarn, InvFreqMatchesFormulaDeepseekV3) {
  // DeepSeek-V3: Dr 64, theta 1e4, factor 40, beta 32/1: low = 10, high = 23 -> all three regimes present.
  RopeConfig r = yarn(10000, 40, 32, 1, 1, 1);
  auto t = rope_tables(r, 64);
  auto want = yarn_reference(64, 10000, 40, 32, 1, 4096, true);
  expect_close(t.inv_freq, want);
  EXPECT_NEAR(t.inv_freq[0], 1.0, 1e-7);                                   // extrapolated: unchanged
  EXPECT_NEAR(t.inv_freq[31], std::pow(10000.0, -62.0 / 64) / 40, 1e-12);  // interpolated: divided by factor
  EXPECT_FLOAT_EQ(t.attention_scaling, 1.0f);                              // mscale == mscale_all_dim
}

TEST(DeepseekV3Yarn, InvFreqMatchesFormulaKimiAndUntruncated) {
  expect_close(rope_tables(yarn(50000, 32, 1, 1, 1, 1), 64).inv_freq,
               yarn_reference(64, 50000, 32, 1, 1, 4096, true));
  RopeConfig r = yarn(10000, 40, 32, 1, 1, 1);
  r.truncate = false;
  expect_close(rope_tables(r, 8).inv_freq, yarn_reference(8, 10000, 40, 32, 1, 4096, false));
  expect_close(rope_tables(r, 64).inv_freq, yarn_reference(64, 10000, 40, 32, 1, 4096, false));
}

TEST(DeepseekV3Yarn, AttentionScaling) {
  // mscale / mscale_all_dim both set: ratio of the two get_mscale values.
  const double m1 = 0.1 * 0.707 * std::log(40.0) + 1, m2 = 0.1 * 1.0 * std::log(40.0) + 1;
  EXPECT_NEAR(rope_tables(yarn(10000, 40, 32, 1, 0.707, 1.0), 64).attention_scaling, m1 / m2, 1e-7);
  // Either absent: get_mscale(factor) with m = 1.
  EXPECT_NEAR(rope_tables(yarn(10000, 40, 32, 1, 0, 1.0), 64).attention_scaling, m2, 1e-6);
  // Explicit attention_factor wins; factor <= 1 gives 1.
  RopeConfig r = yarn(10000, 40, 32, 1, 1, 1);
  r.has_attention_factor = true;
  r.attention_factor = 0.5;
  EXPECT_FLOAT_EQ(rope_tables(r, 64).attention_scaling, 0.5f);
  EXPECT_FLOAT_EQ(rope_tables(yarn(10000, 1.0, 32, 1, 0, 0), 64).attention_scaling, 1.0f);
  // Default rope: plain 1/theta^(2i/d), scaling 1.
  RopeConfig d;
  auto td = rope_tables(d, 8);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(td.inv_freq[i], std::pow(10000.0, -2.0 * i / 8), 1e-7);
  EXPECT_EQ(td.attention_scaling, 1.0f);
}

TEST(DeepseekV3Yarn, SoftmaxScaleUsesMscaleAllDimSquared) {
  Config c;  // Dqk = 128 + 64
  c.rope = yarn(10000, 40, 32, 1, 1, 1);
  const double m = 0.1 * std::log(40.0) + 1;
  EXPECT_NEAR(softmax_scale(c), m * m / std::sqrt(192.0), 1e-12);
  c.rope.mscale_all_dim = 0.5;
  const double m_half = 0.05 * std::log(40.0) + 1;
  EXPECT_NEAR(softmax_scale(c), m_half * m_half / std::sqrt(192.0), 1e-12);
  c.rope.mscale_all_dim = 0;  // unset: no adjustment
  EXPECT_NEAR(softmax_scale(c), 1 / std::sqrt(192.0), 1e-12);
  c.rope = RopeConfig();  // default rope never adjusts, whatever else is set
  c.rope.mscale_all_dim = 1;
  EXPECT_NEAR(softmax_scale(c), 1 / std::sqrt(192.0), 1e-12);
}

TEST(DeepseekV3Rope, PairsToHalvesPermutation) {
  Tensor x = Tensor::empty({1, 2, 10});  // 2 heads, D 10: rope on dims [4, 10) (rot 6)
  for (int64_t i = 0; i < 20; ++i) x.f32()[i] = static_cast<float>(i);
  test_support::rope_pairs_to_halves_inplace(x, 6, 4);
  const float want[20] = {0, 1, 2, 3, 4, 6, 8, 5, 7, 9, 10, 11, 12, 13, 14, 16, 18, 15, 17, 19};
  for (int i = 0; i < 20; ++i) EXPECT_EQ(x.f32()[i], want[i]) << i;
}

TEST(DeepseekV3Rope, InterleavedMatchesPairwiseDefinition) {
  const int64_t n = 3, heads = 2, D = 12, rot = 8, off = 4, half = rot / 2;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  Tensor x = Tensor::empty({n, heads, D});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = nd(rng);
  Tensor orig = x.clone();
  const std::vector<int64_t> pos = {0, 5, 300};
  auto inv = rope_tables(yarn(10000, 40, 32, 1, 0.707, 1), rot);
  test_support::rope_interleaved_inplace(x, pos, inv.inv_freq, rot, off, inv.attention_scaling);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      const float* a = orig.f32() + (t * heads + h) * D;
      const float* y = x.f32() + (t * heads + h) * D;
      for (int64_t d = 0; d < off; ++d) EXPECT_EQ(y[d], a[d]);  // nope dims untouched
      for (int64_t i = 0; i < half; ++i) {
        const double ang = static_cast<double>(pos[t]) * inv.inv_freq[i];
        const double c = std::cos(ang) * inv.attention_scaling, s = std::sin(ang) * inv.attention_scaling;
        const double x0 = a[off + 2 * i], x1 = a[off + 2 * i + 1];
        EXPECT_NEAR(y[off + i], x0 * c - x1 * s, 2e-4) << t << "," << h << "," << i;
        EXPECT_NEAR(y[off + half + i], x1 * c + x0 * s, 2e-4) << t << "," << h << "," << i;
      }
    }
}
