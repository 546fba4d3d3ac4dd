#include "ops/conv1d.h"

#include <vector>

#include "ops/elementwise.h"

namespace hylora::ops {

Tensor causal_conv1d(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& state, bool apply_silu) {
  const int64_t n = x.dim(0), C = x.dim(1), K = w.dim(1);
  HYLORA_CHECK(w.dim(0) == C && state.dim(0) == C && state.dim(1) == K - 1, "internal: conv1d shapes x ",
               shape_str(x.shape()), " w ", shape_str(w.shape()), " state ", shape_str(state.shape()));
  Tensor y = Tensor::empty({n, C});
  const float* xp = x.f32();
  const float* wp = w.f32();
  float* yp = y.f32();
  float* sp = state.f32();
#pragma omp parallel for if (n * C > 4096)
  for (int64_t c = 0; c < C; ++c) {
    // Window of the K most recent inputs for channel c.
    std::vector<float> u(K - 1 + n);
    for (int64_t j = 0; j < K - 1; ++j) u[j] = sp[c * (K - 1) + j];
    for (int64_t t = 0; t < n; ++t) u[K - 1 + t] = xp[t * C + c];
    for (int64_t t = 0; t < n; ++t) {
      float acc = bias.defined() ? bias.f32()[c] : 0.0f;
      for (int64_t j = 0; j < K; ++j) acc += wp[c * K + j] * u[t + j];
      yp[t * C + c] = apply_silu ? silu(acc) : acc;
    }
    for (int64_t j = 0; j < K - 1; ++j) sp[c * (K - 1) + j] = u[n + j];
  }
  return y;
}

}  // namespace hylora::ops
