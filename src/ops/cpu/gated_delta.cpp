// CPU reference of ops::gated_delta_rule (math in ops/gated_delta.h): the plain float32 recurrence, one value head
// per thread. Two passes over S per token: u = Sᵀk̂ (before the decay, scaled after), then the fused decay + rank-1
// update + readout o = Sᵀq̂.
#include "ops/gated_delta.h"

#include <cmath>
#include <vector>

namespace hylora::ops {

namespace {
// out = x · rsqrt(Σx² + 1e-6) · scale   (HF l2norm: eps inside the sqrt, a sum, not a mean)
void l2norm(const float* x, float* out, int64_t d, float scale) {
  double ss = 0.0;
  for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float r = 1.0f / std::sqrt(static_cast<float>(ss) + 1e-6f);
  for (int64_t i = 0; i < d; ++i) out[i] = x[i] * r * scale;
}
}  // namespace

Tensor gated_delta_rule(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& beta,
                        Tensor& state) {
  HYLORA_CHECK(state.ndim() == 3 && q.ndim() == 2 && k.ndim() == 2 && v.ndim() == 2,
               "internal: gated_delta_rule expects 2-D q/k/v and a 3-D state, got q ", shape_str(q.shape()),
               " state ", shape_str(state.shape()));
  const int64_t n = q.dim(0), Hv = state.dim(0), Dk = state.dim(1), Dv = state.dim(2);
  const int64_t Hk = Dk > 0 ? q.dim(1) / Dk : 0;
  HYLORA_CHECK(Hk > 0 && q.dim(1) == Hk * Dk && k.shape() == q.shape() && v.dim(0) == n && v.dim(1) == Hv * Dv &&
                   g.dim(0) == n && g.dim(1) == Hv && beta.shape() == g.shape() && Hv % Hk == 0,
               "internal: gated_delta_rule shapes q ", shape_str(q.shape()), " k ", shape_str(k.shape()), " v ",
               shape_str(v.shape()), " g ", shape_str(g.shape()), " beta ", shape_str(beta.shape()), " state ",
               shape_str(state.shape()));
  const int64_t r = Hv / Hk;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(Dk)));
  Tensor o = Tensor::empty({n, Hv * Dv});
  const float* qp = q.f32();
  const float* kp = k.f32();
  const float* vp = v.f32();
  const float* gp = g.f32();
  const float* bp = beta.f32();
  float* op = o.f32();
  float* sp = state.f32();
#pragma omp parallel for schedule(static) if (n * Hv * Dk * Dv > 32768)
  for (int64_t h = 0; h < Hv; ++h) {
    const int64_t kh = h / r;
    float* S = sp + h * Dk * Dv;  // [Dk, Dv]
    std::vector<float> qn(Dk), kn(Dk), u(Dv);
    for (int64_t t = 0; t < n; ++t) {
      l2norm(qp + t * Hk * Dk + kh * Dk, qn.data(), Dk, scale);
      l2norm(kp + t * Hk * Dk + kh * Dk, kn.data(), Dk, 1.0f);
      const float decay = std::exp(gp[t * Hv + h]);
      const float b = bp[t * Hv + h];
      const float* vt = vp + t * Hv * Dv + h * Dv;  // [Dv]
      float* ot = op + t * Hv * Dv + h * Dv;        // [Dv]
      // u = (e^g S)ᵀ k̂ ; d = β (v − u), kept in u.
      std::fill(u.begin(), u.end(), 0.0f);
      for (int64_t i = 0; i < Dk; ++i) {
        const float ki = kn[i];
        const float* Si = S + i * Dv;
        for (int64_t j = 0; j < Dv; ++j) u[j] += Si[j] * ki;
      }
      for (int64_t j = 0; j < Dv; ++j) u[j] = b * (vt[j] - decay * u[j]);
      // S = e^g S + k̂ ⊗ d ; o = Sᵀ q̂.
      std::fill(ot, ot + Dv, 0.0f);
      for (int64_t i = 0; i < Dk; ++i) {
        const float ki = kn[i], qi = qn[i];
        float* Si = S + i * Dv;
        for (int64_t j = 0; j < Dv; ++j) {
          Si[j] = decay * Si[j] + ki * u[j];
          ot[j] += qi * Si[j];
        }
      }
    }
  }
  return o;
}

}  // namespace hylora::ops
