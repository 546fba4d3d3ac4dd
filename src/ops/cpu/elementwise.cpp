#include "ops/elementwise.h"

#include <cmath>
#include <cstring>

namespace hylora::ops {

namespace {
void norm_row(const float* x, float* y, const float* w, int64_t d, float eps, NormKind kind) {
  double ss = 0.0;
  for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float r = 1.0f / std::sqrt(static_cast<float>(ss / d) + eps);
  if (kind == NormKind::kOnePlus)
    for (int64_t i = 0; i < d; ++i) y[i] = x[i] * r * (1.0f + w[i]);
  else
    for (int64_t i = 0; i < d; ++i) y[i] = x[i] * r * w[i];
}
}  // namespace

Tensor rms_norm(const Tensor& x, const Tensor& w, float eps, NormKind kind) {
  const int64_t d = x.dim(-1);
  HYLORA_CHECK(w.numel() == d, "internal: rms_norm weight ", shape_str(w.shape()), " for rows of ", d);
  Tensor y = Tensor::empty(x.shape());
  const int64_t rows = x.numel() / d;
#pragma omp parallel for if (rows > 64)
  for (int64_t r = 0; r < rows; ++r) norm_row(x.f32() + r * d, y.f32() + r * d, w.f32(), d, eps, kind);
  return y;
}

void rms_norm_groups_inplace(Tensor& x, const Tensor& w, int64_t group, float eps, NormKind kind) {
  HYLORA_CHECK(w.numel() == group && x.numel() % group == 0, "internal: grouped rms_norm");
  const int64_t rows = x.numel() / group;
  float* p = x.f32();
#pragma omp parallel for if (rows > 256)
  for (int64_t r = 0; r < rows; ++r) norm_row(p + r * group, p + r * group, w.f32(), group, eps, kind);
}

float silu(float x) { return x / (1.0f + std::exp(-x)); }
float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

void add_inplace(Tensor& y, const Tensor& x) {
  HYLORA_CHECK(y.numel() == x.numel(), "internal: add of ", shape_str(y.shape()), " and ", shape_str(x.shape()));
  float* a = y.f32();
  const float* b = x.f32();
  for (int64_t i = 0; i < y.numel(); ++i) a[i] += b[i];
}

Tensor silu_gate_halves(const Tensor& x) {
  const int64_t rows = x.dim(0), I = x.dim(1) / 2;
  Tensor a = Tensor::empty({rows, I});
  const float* xp = x.f32();
  float* ap = a.f32();
#pragma omp parallel for if (rows * I > 16384)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < I; ++c) ap[r * I + c] = silu(xp[r * 2 * I + c]) * xp[r * 2 * I + I + c];
  return a;
}

Tensor embedding(const Tensor& table, const std::vector<int32_t>& ids) {
  const int64_t h = table.dim(1);
  Tensor out = Tensor::empty({static_cast<int64_t>(ids.size()), h});
  for (size_t i = 0; i < ids.size(); ++i) {
    HYLORA_CHECK(ids[i] >= 0 && ids[i] < table.dim(0), "token id ", ids[i], " is outside the vocabulary [0, ",
                 table.dim(0), ")");
    std::memcpy(out.f32() + i * h, table.f32() + static_cast<int64_t>(ids[i]) * h, h * sizeof(float));
  }
  return out;
}

}  // namespace hylora::ops
