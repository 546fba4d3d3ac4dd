// ops::ssm_scan (Mamba2 recurrence) against a naive double-precision recurrence written here from models.md §2.3,
// chunked continuation through the state, and the Δ clamp at time_step_min. Also ops::rms_norm_gated.
#include <gtest/gtest.h>

#include "test_support.h"

#include <cmath>
#include <random>
#include <vector>

#include "ops/gated_rms_norm.h"
#include "ops/ssm_scan.h"

using namespace hylora;

namespace {

Tensor randn(Shape s, std::mt19937& rng, float scale = 1.0f, float shift = 0.0f) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  Tensor t = Tensor::empty(std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = shift + scale * d(rng);
  return t;
}

struct Inputs {
  int64_t n, nh, hd, G, N;
  Tensor x, dt, B, C, A, D, dt_bias;
};

Inputs make_inputs(int64_t n, int64_t nh, int64_t hd, int64_t G, int64_t N, std::mt19937& rng, float dt_shift) {
  Inputs in{n, nh, hd, G, N, {}, {}, {}, {}, {}, {}, {}};
  in.x = randn({n, nh * hd}, rng);
  in.dt = randn({n, nh}, rng, 1.0f, dt_shift);
  in.B = randn({n, G * N}, rng);
  in.C = randn({n, G * N}, rng);
  in.A = Tensor::empty({nh});
  std::uniform_real_distribution<float> u(0.5f, 3.5f);
  for (int64_t h = 0; h < nh; ++h) in.A.f32()[h] = -u(rng);
  in.D = randn({nh}, rng);
  in.dt_bias = randn({nh}, rng, 0.3f);
  return in;
}

// y [n, nh*hd] from a zero (or given) double state, the recurrence exactly as written in models.md.
std::vector<double> naive(const Inputs& in, float dt_min, std::vector<double>& S) {
  const int64_t n = in.n, nh = in.nh, hd = in.hd, N = in.N, hpg = nh / in.G;
  std::vector<double> y(n * nh * hd);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < nh; ++h) {
      const int64_t g = h / hpg;
      const double v = static_cast<double>(in.dt.f32()[t * nh + h]) + in.dt_bias.f32()[h];
      double delta = v > 20 ? v : std::log1p(std::exp(v));
      delta = std::max(delta, static_cast<double>(dt_min));
      const double decay = std::exp(delta * in.A.f32()[h]);
      for (int64_t p = 0; p < hd; ++p) {
        const double x = in.x.f32()[t * nh * hd + h * hd + p];
        double acc = 0;
        for (int64_t j = 0; j < N; ++j) {
          double& s = S[(h * hd + p) * N + j];
          s = decay * s + delta * x * in.B.f32()[t * in.G * N + g * N + j];
          acc += s * in.C.f32()[t * in.G * N + g * N + j];
        }
        y[t * nh * hd + h * hd + p] = acc + in.D.f32()[h] * x;
      }
    }
  return y;
}

Tensor rows(const Tensor& t, int64_t a, int64_t b) { return t.rows(a, b).clone(); }

double max_rel(const Tensor& got, const std::vector<double>& want, int64_t offset = 0) {
  double scale = 0, err = 0;
  for (double v : want) scale = std::max(scale, std::abs(v));
  for (int64_t i = 0; i < got.numel(); ++i) err = std::max(err, std::abs(got.f32()[i] - want[offset + i]));
  return err / scale;
}

}  // namespace

TEST(NemotronHSsmScan, MatchesNaiveDoubleRecurrence) {
  std::mt19937 rng(7);
  for (auto [nh, G] : {std::pair<int64_t, int64_t>{8, 2}, {4, 4}, {6, 1}}) {
    Inputs in = make_inputs(37, nh, 8, G, 16, rng, 0.0f);
    std::vector<double> S(nh * 8 * 16, 0.0);
    auto want = naive(in, 0.001f, S);
    Tensor state = Tensor::zeros({nh, 8, 16});
    Tensor y = test_support::ssm_scan(in.x, in.dt, in.B, in.C, in.A, in.D, in.dt_bias, 0.001f, state);
    EXPECT_LT(max_rel(y, want), 2e-6) << "nh " << nh << " G " << G;
    std::vector<double> got_state(state.f32(), state.f32() + state.numel());
    double err = 0, scale = 0;
    for (size_t i = 0; i < S.size(); ++i) {
      err = std::max(err, std::abs(got_state[i] - S[i]));
      scale = std::max(scale, std::abs(S[i]));
    }
    EXPECT_LT(err / scale, 2e-6);
  }
}

TEST(NemotronHSsmScan, ClampsDeltaAtTimeStepMin) {
  // dt around -12: softplus ≈ 6e-6, far below dt_min = 0.01, so every step uses Δ = dt_min.
  std::mt19937 rng(3);
  Inputs in = make_inputs(9, 4, 4, 2, 8, rng, -12.0f);
  std::vector<double> S(4 * 4 * 8, 0.0);
  auto want = naive(in, 0.01f, S);
  Tensor state = Tensor::zeros({4, 4, 8});
  Tensor y = test_support::ssm_scan(in.x, in.dt, in.B, in.C, in.A, in.D, in.dt_bias, 0.01f, state);
  EXPECT_LT(max_rel(y, want), 2e-6);
  // Without the clamp the result is visibly different (the test can fail).
  std::vector<double> S2(4 * 4 * 8, 0.0);
  auto unclamped = naive(in, 0.0f, S2);
  EXPECT_GT(max_rel(y, unclamped), 1e-3);
}

TEST(NemotronHSsmScan, ChunkedContinuationEqualsOneCall) {
  std::mt19937 rng(11);
  Inputs in = make_inputs(25, 8, 8, 2, 16, rng, 0.0f);
  Tensor s_one = Tensor::zeros({8, 8, 16});
  Tensor y_one = test_support::ssm_scan(in.x, in.dt, in.B, in.C, in.A, in.D, in.dt_bias, 0.001f, s_one);
  for (int64_t split : {1, 10, 24}) {
    Tensor s = Tensor::zeros({8, 8, 16});
    Tensor y1 = test_support::ssm_scan(rows(in.x, 0, split), rows(in.dt, 0, split), rows(in.B, 0, split),
                              rows(in.C, 0, split), in.A, in.D, in.dt_bias, 0.001f, s);
    Tensor y2 = test_support::ssm_scan(rows(in.x, split, 25), rows(in.dt, split, 25), rows(in.B, split, 25),
                              rows(in.C, split, 25), in.A, in.D, in.dt_bias, 0.001f, s);
    for (int64_t i = 0; i < y1.numel(); ++i) ASSERT_EQ(y1.f32()[i], y_one.f32()[i]);
    for (int64_t i = 0; i < y2.numel(); ++i) ASSERT_EQ(y2.f32()[i], y_one.f32()[y1.numel() + i]) << "split " << split;
    for (int64_t i = 0; i < s.numel(); ++i) ASSERT_EQ(s.f32()[i], s_one.f32()[i]);
  }
}

TEST(NemotronHGatedNorm, GateBeforeNormOverGroups) {
  std::mt19937 rng(5);
  const int64_t n = 3, D = 12, group = 4;
  Tensor y = randn({n, D}, rng), z = randn({n, D}, rng), w = randn({D}, rng, 0.3f, 1.0f);
  Tensor out = test_support::rms_norm_gated(y, z, w, group, 1e-5f, ops::GateOrder::kGateBeforeNorm);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t g = 0; g < D / group; ++g) {
      std::vector<double> u(group);
      double ss = 0;
      for (int64_t i = 0; i < group; ++i) {
        const double zz = z.f32()[r * D + g * group + i];
        u[i] = y.f32()[r * D + g * group + i] * zz / (1 + std::exp(-zz));
        ss += u[i] * u[i];
      }
      const double inv = 1 / std::sqrt(ss / group + 1e-5);
      for (int64_t i = 0; i < group; ++i)
        EXPECT_NEAR(out.f32()[r * D + g * group + i], w.f32()[g * group + i] * u[i] * inv, 1e-5);
    }
}
