// ops::gated_delta_rule against a direct float64 implementation of models.md §1.4 written in its matrix form
// (S_t = e^{g_t} (I − β_t k̂_t k̂_tᵀ) S_{t−1} + β_t k̂_t v_tᵀ, o_t = S_tᵀ q̂_t), on random inputs including strong
// decay; plus chunked continuation (the state carried over two calls equals one call).
#include <gtest/gtest.h>

#include "test_support.h"

#include <cmath>
#include <random>
#include <vector>

#include "ops/gated_delta.h"

using namespace hylora;

namespace {

struct Inputs {
  int64_t n, Hk, Hv, Dk, Dv;
  Tensor q, k, v, g, beta;  // [n, Hk·Dk] ×2, [n, Hv·Dv], [n, Hv] ×2
};

Tensor randn(Shape s, std::mt19937& rng, float scale) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = scale * nd(rng);
  return t;
}

// g ≤ 0: mostly mild decay, with `strong` of the entries pushed down to [-40, -10] (e^g underflows to ~0).
Inputs make_inputs(int64_t n, int64_t Hk, int64_t Hv, int64_t Dk, int64_t Dv, double strong, unsigned seed) {
  std::mt19937 rng(seed);
  Inputs in{n, Hk, Hv, Dk, Dv, randn({n, Hk * Dk}, rng, 1.0f), randn({n, Hk * Dk}, rng, 1.0f),
            randn({n, Hv * Dv}, rng, 1.0f), Tensor::empty({n, Hv}), Tensor::empty({n, Hv})};
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int64_t i = 0; i < n * Hv; ++i) {
    const float a = u(rng);
    in.g.f32()[i] = u(rng) < strong ? -10.0f - 30.0f * a : -2.0f * a;
    in.beta.f32()[i] = u(rng);
  }
  // A few tiny q/k vectors so the eps inside the l2norm matters.
  for (int64_t d = 0; d < Dk; ++d) in.k.f32()[3 * Hk * Dk + d] *= 1e-4f;
  for (int64_t d = 0; d < Dk; ++d) in.q.f32()[5 * Hk * Dk + Dk * (Hk - 1) + d] *= 1e-4f;
  return in;
}

// Direct float64 reference; state [Hv][Dk][Dv] in/out.
std::vector<double> naive(const Inputs& in, std::vector<double>& S) {
  const int64_t n = in.n, Hk = in.Hk, Hv = in.Hv, Dk = in.Dk, Dv = in.Dv, r = Hv / Hk;
  std::vector<double> out(n * Hv * Dv);
  auto l2 = [&](const float* x, double scale) {
    std::vector<double> y(Dk);
    double ss = 0;
    for (int64_t i = 0; i < Dk; ++i) ss += double(x[i]) * x[i];
    for (int64_t i = 0; i < Dk; ++i) y[i] = x[i] / std::sqrt(ss + 1e-6) * scale;
    return y;
  };
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < Hv; ++h) {
      const int64_t kh = h / r;  // repeat_interleave: value head h reads key head h / r
      auto q = l2(in.q.f32() + t * Hk * Dk + kh * Dk, 1.0 / std::sqrt(double(Dk)));
      auto k = l2(in.k.f32() + t * Hk * Dk + kh * Dk, 1.0);
      const double eg = std::exp(double(in.g.f32()[t * Hv + h])), b = in.beta.f32()[t * Hv + h];
      const float* v = in.v.f32() + t * Hv * Dv + h * Dv;
      double* s = S.data() + h * Dk * Dv;
      // P = I − β k kᵀ ; S ← e^g P S + β k vᵀ
      std::vector<double> ns(Dk * Dv);
      for (int64_t i = 0; i < Dk; ++i)
        for (int64_t j = 0; j < Dv; ++j) {
          double ps = 0;
          for (int64_t m = 0; m < Dk; ++m) ps += ((i == m ? 1.0 : 0.0) - b * k[i] * k[m]) * s[m * Dv + j];
          ns[i * Dv + j] = eg * ps + b * k[i] * v[j];
        }
      std::copy(ns.begin(), ns.end(), s);
      for (int64_t j = 0; j < Dv; ++j) {
        double o = 0;
        for (int64_t i = 0; i < Dk; ++i) o += s[i * Dv + j] * q[i];
        out[(t * Hv + h) * Dv + j] = o;
      }
    }
  return out;
}

double max_abs(const std::vector<double>& a, const Tensor& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b.f32()[i]));
  return m;
}

double max_abs_value(const std::vector<double>& a) {
  double m = 0;
  for (double x : a) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace

TEST(GatedDeltaRule, MatchesNaiveFloat64WithHeadMappingAndStrongDecay) {
  for (double strong : {0.0, 0.3}) {
    Inputs in = make_inputs(/*n=*/70, /*Hk=*/2, /*Hv=*/4, /*Dk=*/16, /*Dv=*/24, strong, 7);
    std::vector<double> S(in.Hv * in.Dk * in.Dv, 0.0);
    auto want = naive(in, S);
    Tensor state = Tensor::zeros({in.Hv, in.Dk, in.Dv});
    Tensor got = test_support::gated_delta_rule(in.q, in.k, in.v, in.g, in.beta, state);
    ASSERT_EQ(got.shape(), (Shape{70, 4 * 24}));
    const double scale = max_abs_value(want);
    EXPECT_GT(scale, 0.1);
    EXPECT_LT(max_abs(want, got), 2e-5 * scale) << "strong decay fraction " << strong;
    double ds = 0;
    for (size_t i = 0; i < S.size(); ++i) ds = std::max(ds, std::abs(S[i] - state.f32()[i]));
    EXPECT_LT(ds, 2e-5 * max_abs_value(S)) << "final state";
  }
}

TEST(GatedDeltaRule, TiledHeadMappingWouldBeWrong) {
  // Guards the repeat_interleave mapping: with Hv/Hk = 2, value head 1 must read key head 0 (not 1 = 1 % Hk).
  Inputs in = make_inputs(8, 2, 4, 8, 8, 0.0, 11);
  Tensor state = Tensor::zeros({4, 8, 8});
  Tensor a = test_support::gated_delta_rule(in.q, in.k, in.v, in.g, in.beta, state);
  // Swap key head 1's q/k with key head 0's: value heads 0 and 1 (both on key head 0) must change, and only
  // through key head 0.
  Tensor q2 = in.q.clone(), k2 = in.k.clone();
  for (int64_t t = 0; t < 8; ++t)
    for (int64_t d = 0; d < 8; ++d) {
      q2.f32()[t * 16 + 8 + d] = 0.5f;  // key head 1 changed
      k2.f32()[t * 16 + 8 + d] = -0.25f;
    }
  Tensor state2 = Tensor::zeros({4, 8, 8});
  Tensor b = test_support::gated_delta_rule(q2, k2, in.v, in.g, in.beta, state2);
  for (int64_t t = 0; t < 8; ++t)
    for (int64_t j = 0; j < 2 * 8; ++j) EXPECT_EQ(a.f32()[t * 32 + j], b.f32()[t * 32 + j]);  // heads 0, 1
  EXPECT_NE(a.f32()[2 * 8], b.f32()[2 * 8]);                                                  // head 2
}

TEST(GatedDeltaRule, ChunkedContinuationEqualsOneCall) {
  Inputs in = make_inputs(70, 2, 4, 16, 24, 0.2, 3);
  Tensor s_all = Tensor::zeros({4, 16, 24});
  Tensor all = test_support::gated_delta_rule(in.q, in.k, in.v, in.g, in.beta, s_all);
  Tensor s = Tensor::zeros({4, 16, 24});
  int64_t done = 0;
  for (int64_t len : {1, 29, 1, 39}) {  // includes single-token decode steps
    Tensor o = test_support::gated_delta_rule(in.q.rows(done, done + len).clone(), in.k.rows(done, done + len).clone(),
                                     in.v.rows(done, done + len).clone(), in.g.rows(done, done + len).clone(),
                                     in.beta.rows(done, done + len).clone(), s);
    for (int64_t i = 0; i < o.numel(); ++i) ASSERT_EQ(o.f32()[i], all.f32()[done * 96 + i]) << "row " << done;
    done += len;
  }
  ASSERT_EQ(done, 70);
  for (int64_t i = 0; i < s.numel(); ++i) ASSERT_EQ(s.f32()[i], s_all.f32()[i]);
}

TEST(GatedDeltaRule, RejectsMismatchedShapes) {
  Tensor q = Tensor::zeros({3, 2 * 8}), v = Tensor::zeros({3, 3 * 8}), g = Tensor::zeros({3, 3});
  Tensor state = Tensor::zeros({3, 8, 8});  // Hv = 3 is not a multiple of Hk = 2
  EXPECT_THROW(test_support::gated_delta_rule(q, q, v, g, g, state), Error);
}
