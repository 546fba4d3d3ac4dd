// CPU reference of ops::gated_delta_rule (math in ops/gated_delta.h): the plain float32 recurrence, one (sequence,
// value head) per task. Two passes over S per token: u = Sᵀk̂ (before the decay, scaled after), then the fused
// decay + rank-1 update + readout o = Sᵀq̂.
#include "ops/gated_delta.h"

#include <algorithm>
#include <cmath>

#include <omp.h>

namespace hylora::ops::cpu {

namespace {
// out = x · rsqrt(Σx² + 1e-6) · scale   (HF l2norm: eps inside the sqrt, a sum, not a mean)
void l2norm(const float* x, float* out, int64_t d, float scale) {
  double ss = 0.0;
  for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float r = 1.0f / std::sqrt(static_cast<float>(ss) + 1e-6f);
  for (int64_t i = 0; i < d; ++i) out[i] = x[i] * r * scale;
}
}  // namespace

void gated_delta_rule(ExecCtx& ctx, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g,
                      const Tensor& beta, const SeqLayout& layout, Tensor& state_pool, Tensor& o) {
  HYLORA_CHECK(state_pool.ndim() == 4 && q.ndim() == 2 && k.ndim() == 2 && v.ndim() == 2,
               "internal: gated_delta_rule expects 2-D q/k/v and a 4-D state pool, got q ", shape_str(q.shape()),
               " state ", shape_str(state_pool.shape()));
  const int64_t T = q.dim(0), Hv = state_pool.dim(1), Dk = state_pool.dim(2), Dv = state_pool.dim(3);
  const int64_t Hk = Dk > 0 ? q.dim(1) / Dk : 0;
  HYLORA_CHECK(Hk > 0 && q.dim(1) == Hk * Dk && k.dim(0) == T && k.dim(1) == q.dim(1) && v.dim(0) == T &&
                   v.dim(1) == Hv * Dv && g.dim(0) == T && g.dim(1) == Hv && beta.dim(0) == T && beta.dim(1) == Hv &&
                   Hv % Hk == 0 && o.dim(0) == T && o.dim(1) == Hv * Dv,
               "internal: gated_delta_rule shapes q ", shape_str(q.shape()), " k ", shape_str(k.shape()), " v ",
               shape_str(v.shape()), " g ", shape_str(g.shape()), " beta ", shape_str(beta.shape()), " state ",
               shape_str(state_pool.shape()));
  const int64_t r = Hv / Hk;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(Dk)));
  const int threads = T * Hv * Dk * Dv > 32768 ? omp_get_max_threads() : 1;
  Tensor buf = ctx.scratch.tensor({threads, 2 * Dk + Dv});  // per thread: q̂, k̂, u
#pragma omp parallel num_threads(threads)
  {
    float* qn = buf.f32() + omp_get_thread_num() * (2 * Dk + Dv);
    float* kn = qn + Dk;
    float* u = kn + Dk;
#pragma omp for collapse(2) schedule(static)
    for (int64_t s = 0; s < layout.num_seqs; ++s) {
      for (int64_t h = 0; h < Hv; ++h) {
        const int64_t kh = h / r;
        float* S = state_pool.f32() + (static_cast<int64_t>(layout.state_slots.i32()[s]) * Hv + h) * Dk * Dv;
        for (int64_t t = layout.cu_seqlens.i32()[s]; t < layout.cu_seqlens.i32()[s + 1]; ++t) {
          l2norm(q.f32() + t * q.ld() + kh * Dk, qn, Dk, scale);
          l2norm(k.f32() + t * k.ld() + kh * Dk, kn, Dk, 1.0f);
          const float decay = std::exp(g.f32()[t * g.ld() + h]);
          const float b = beta.f32()[t * beta.ld() + h];
          const float* vt = v.f32() + t * v.ld() + h * Dv;  // [Dv]
          float* ot = o.f32() + t * o.ld() + h * Dv;        // [Dv]
          // u = (e^g S)ᵀ k̂ ; d = β (v − u), kept in u.
          std::fill(u, u + Dv, 0.0f);
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
    }
  }
}

}  // namespace hylora::ops::cpu
