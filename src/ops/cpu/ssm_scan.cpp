// CPU reference of ops::ssm_scan (math in ops/ssm_scan.h): a float32 step-by-step recurrence, one head per thread.
// HF runs the chunked SSD algorithm instead; both are exact forms of the same recurrence (≈1e-7 rel apart in fp32).
#include "ops/ssm_scan.h"

#include <algorithm>
#include <cmath>

#include "ops/elementwise.h"

namespace hylora::ops {

Tensor ssm_scan(const Tensor& x, const Tensor& dt, const Tensor& B, const Tensor& C, const Tensor& A,
                const Tensor& D, const Tensor& dt_bias, float dt_min, Tensor& state) {
  const int64_t n = x.dim(0), nh = state.dim(0), hd = state.dim(1), N = state.dim(2);
  const int64_t gn = B.dim(1), G = gn / N;
  HYLORA_CHECK(x.ndim() == 2 && x.dim(1) == nh * hd && dt.dim(0) == n && dt.dim(1) == nh && B.dim(0) == n &&
                   C.dim(0) == n && C.dim(1) == gn && gn % N == 0 && G > 0 && nh % G == 0 && A.numel() == nh &&
                   D.numel() == nh && dt_bias.numel() == nh,
               "internal: ssm_scan shapes x ", shape_str(x.shape()), " dt ", shape_str(dt.shape()), " B ",
               shape_str(B.shape()), " C ", shape_str(C.shape()), " state ", shape_str(state.shape()));
  const int64_t heads_per_group = nh / G;
  Tensor y = Tensor::empty({n, nh * hd});
  const float* xp = x.f32();
  const float* dtp = dt.f32();
  const float* Bp = B.f32();
  const float* Cp = C.f32();
  float* yp = y.f32();
  float* sp = state.f32();
#pragma omp parallel for schedule(static) if (n * nh * hd * N > 32768)
  for (int64_t h = 0; h < nh; ++h) {
    const int64_t g = h / heads_per_group;
    const float a = A.f32()[h], d = D.f32()[h], bias = dt_bias.f32()[h];
    float* S = sp + h * hd * N;  // [hd, N]
    for (int64_t t = 0; t < n; ++t) {
      const float delta = std::max(softplus(dtp[t * nh + h] + bias), dt_min);
      const float decay = std::exp(delta * a);
      const float* xt = xp + t * nh * hd + h * hd;  // [hd]
      const float* bt = Bp + t * gn + g * N;        // [N]
      const float* ct = Cp + t * gn + g * N;        // [N]
      float* yt = yp + t * nh * hd + h * hd;        // [hd]
      for (int64_t p = 0; p < hd; ++p) {
        float* s = S + p * N;
        const float dx = delta * xt[p];
        float acc = 0.0f;
        for (int64_t j = 0; j < N; ++j) {
          s[j] = decay * s[j] + dx * bt[j];
          acc += s[j] * ct[j];
        }
        yt[p] = acc + d * xt[p];
      }
    }
  }
  return y;
}

}  // namespace hylora::ops
