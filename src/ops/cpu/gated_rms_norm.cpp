// CPU reference of ops::rms_norm_gated (math in ops/gated_rms_norm.h). The sum of squares is accumulated in double
// (HF reduces in fp32; the difference is far below the fp32 rounding of the result).
#include "ops/gated_rms_norm.h"

#include <cmath>
#include <vector>

#include "ops/elementwise.h"

namespace hylora::ops {

Tensor rms_norm_gated(const Tensor& y, const Tensor& z, const Tensor& w, int64_t group, float eps, GateOrder order) {
  const int64_t n = y.dim(0), D = y.dim(1);
  HYLORA_CHECK(y.ndim() == 2 && z.shape() == y.shape() && w.numel() == D && group > 0 && D % group == 0,
               "internal: rms_norm_gated shapes y ", shape_str(y.shape()), " z ", shape_str(z.shape()), " w ",
               shape_str(w.shape()), " group ", group);
  Tensor out = Tensor::empty({n, D});
  const float* yp = y.f32();
  const float* zp = z.f32();
  const float* wp = w.f32();
  float* op = out.f32();
#pragma omp parallel for if (n * D > 65536)
  for (int64_t r = 0; r < n; ++r) {
    std::vector<float> u(D);
    for (int64_t i = 0; i < D; ++i)
      u[i] = order == GateOrder::kGateBeforeNorm ? yp[r * D + i] * silu(zp[r * D + i]) : yp[r * D + i];
    for (int64_t g0 = 0; g0 < D; g0 += group) {
      double ss = 0.0;
      for (int64_t i = g0; i < g0 + group; ++i) ss += static_cast<double>(u[i]) * u[i];
      const float inv = 1.0f / std::sqrt(static_cast<float>(ss / group) + eps);
      for (int64_t i = g0; i < g0 + group; ++i) {
        float v = wp[i] * (u[i] * inv);
        if (order == GateOrder::kGateAfterNorm) v *= silu(zp[r * D + i]);
        op[r * D + i] = v;
      }
    }
  }
  return out;
}

}  // namespace hylora::ops
