// CPU reference of ops::rms_norm_gated (math in ops/gated_rms_norm.h). The sum of squares is accumulated in double
// (HF reduces in fp32; the difference is far below the fp32 rounding of the result).
#include "ops/gated_rms_norm.h"

#include <cmath>

#include "ops/elementwise.h"

namespace hylora::ops::cpu {

void rms_norm_gated(ExecCtx& ctx, const Tensor& y, const Tensor& z, const Tensor& w, int64_t group, float eps,
                    GateOrder order, Tensor& out) {
  const int64_t n = y.dim(0), D = y.dim(1);
  HYLORA_CHECK(y.ndim() == 2 && z.ndim() == 2 && z.dim(0) == n && z.dim(1) == D && w.numel() == D && group > 0 &&
                   D % group == 0 && out.dim(0) == n && out.dim(1) == D,
               "internal: rms_norm_gated shapes y ", shape_str(y.shape()), " z ", shape_str(z.shape()), " w ",
               shape_str(w.shape()), " group ", group);
  Tensor u = ctx.scratch.tensor({n, D});  // the normalised quantity (gated first for kGateBeforeNorm)
  const float* wp = w.f32();
#pragma omp parallel for if (n * D > 65536)
  for (int64_t r = 0; r < n; ++r) {
    const float* yr = y.f32() + r * y.ld();
    const float* zr = z.f32() + r * z.ld();
    float* ur = u.f32() + r * D;
    float* orow = out.f32() + r * out.ld();
    for (int64_t i = 0; i < D; ++i) ur[i] = order == GateOrder::kGateBeforeNorm ? yr[i] * silu(zr[i]) : yr[i];
    for (int64_t g0 = 0; g0 < D; g0 += group) {
      double ss = 0.0;
      for (int64_t i = g0; i < g0 + group; ++i) ss += static_cast<double>(ur[i]) * ur[i];
      const float inv = 1.0f / std::sqrt(static_cast<float>(ss / group) + eps);
      for (int64_t i = g0; i < g0 + group; ++i) {
        float v = wp[i] * (ur[i] * inv);
        if (order == GateOrder::kGateAfterNorm) v *= silu(zr[i]);
        orow[i] = v;
      }
    }
  }
}

}  // namespace hylora::ops::cpu
