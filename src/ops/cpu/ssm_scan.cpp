// CPU reference of ops::ssm_scan (math in ops/ssm_scan.h): a float32 step-by-step recurrence, one (sequence, head)
// per task. HF runs the chunked SSD algorithm instead; both are exact forms of the same recurrence (≈1e-7 rel apart
// in fp32).
#include "ops/ssm_scan.h"

#include <algorithm>
#include <cmath>

#include "ops/elementwise.h"

namespace hylora::ops::cpu {

void ssm_scan(ExecCtx&, const Tensor& x, const Tensor& dt, const Tensor& B, const Tensor& C, const Tensor& A,
              const Tensor& D, const Tensor& dt_bias, float dt_min, const SeqLayout& layout, Tensor& state_pool,
              Tensor& y) {
  const int64_t T = x.dim(0), nh = state_pool.dim(1), hd = state_pool.dim(2), N = state_pool.dim(3);
  const int64_t gn = B.dim(1), G = N > 0 ? gn / N : 0;
  HYLORA_CHECK(state_pool.ndim() == 4 && x.ndim() == 2 && x.dim(1) == nh * hd && dt.dim(0) == T && dt.dim(1) == nh &&
                   B.dim(0) == T && C.dim(0) == T && C.dim(1) == gn && G > 0 && gn == G * N && nh % G == 0 &&
                   A.numel() == nh && D.numel() == nh && dt_bias.numel() == nh && y.dim(0) == T &&
                   y.dim(1) == nh * hd,
               "internal: ssm_scan shapes x ", shape_str(x.shape()), " dt ", shape_str(dt.shape()), " B ",
               shape_str(B.shape()), " C ", shape_str(C.shape()), " state ", shape_str(state_pool.shape()));
  const int64_t heads_per_group = nh / G;
#pragma omp parallel for collapse(2) schedule(static) if (T * nh * hd * N > 32768)
  for (int64_t s = 0; s < layout.num_seqs; ++s) {
    for (int64_t h = 0; h < nh; ++h) {
      const int64_t g = h / heads_per_group;
      const float a = A.f32()[h], d = D.f32()[h], bias = dt_bias.f32()[h];
      float* S = state_pool.f32() + (static_cast<int64_t>(layout.state_slots.i32()[s]) * nh + h) * hd * N;  // [hd, N]
      for (int64_t t = layout.cu_seqlens.i32()[s]; t < layout.cu_seqlens.i32()[s + 1]; ++t) {
        const float delta = std::max(softplus(dt.f32()[t * dt.ld() + h] + bias), dt_min);
        const float decay = std::exp(delta * a);
        const float* xt = x.f32() + t * x.ld() + h * hd;  // [hd]
        const float* bt = B.f32() + t * B.ld() + g * N;   // [N]
        const float* ct = C.f32() + t * C.ld() + g * N;   // [N]
        float* yt = y.f32() + t * y.ld() + h * hd;        // [hd]
        for (int64_t p = 0; p < hd; ++p) {
          float* st = S + p * N;
          const float dx = delta * xt[p];
          float acc = 0.0f;
          for (int64_t j = 0; j < N; ++j) {
            st[j] = decay * st[j] + dx * bt[j];
            acc += st[j] * ct[j];
          }
          yt[p] = acc + d * xt[p];
        }
      }
    }
  }
}

}  // namespace hylora::ops::cpu
