// CPU reference of the pointwise and normalisation ops (ops/elementwise.h). Rows may be strided views.
#include "ops/elementwise.h"

#include <cmath>
#include <cstring>

namespace hylora::ops::cpu {

namespace {
void check_same(const Tensor& a, const Tensor& b, const char* op) {
  HYLORA_CHECK(a.ndim() == 2 && b.ndim() == 2 && a.dim(0) == b.dim(0) && a.dim(1) == b.dim(1), "internal: ", op,
               " of ", shape_str(a.shape()), " and ", shape_str(b.shape()));
}

void norm_group(const float* x, float* y, const float* w, int64_t d, float eps, NormKind kind) {
  double ss = 0.0;
  for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float r = 1.0f / std::sqrt(static_cast<float>(ss / d) + eps);
  if (kind == NormKind::kOnePlus)
    for (int64_t i = 0; i < d; ++i) y[i] = x[i] * r * (1.0f + w[i]);
  else
    for (int64_t i = 0; i < d; ++i) y[i] = x[i] * r * w[i];
}
}  // namespace

void rms_norm(ExecCtx&, const Tensor& x, const Tensor& w, int64_t group, float eps, NormKind kind, Tensor& y) {
  check_same(x, y, "rms_norm");
  const int64_t rows = x.dim(0), W = x.dim(1);
  HYLORA_CHECK(group > 0 && W % group == 0 && w.numel() == group, "internal: rms_norm weight ",
               shape_str(w.shape()), " for groups of ", group, " in rows of ", W);
  const float* xp = x.f32();
  float* yp = y.f32();
  const int64_t ldx = x.ld(), ldy = y.ld();
#pragma omp parallel for if (rows * W > 65536)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < W; g += group) norm_group(xp + r * ldx + g, yp + r * ldy + g, w.f32(), group, eps, kind);
}

void add(ExecCtx&, const Tensor& x, Tensor& y) {
  check_same(x, y, "add");
  for (int64_t r = 0; r < y.dim(0); ++r) {
    float* a = y.f32() + r * y.ld();
    const float* b = x.f32() + r * x.ld();
    for (int64_t c = 0; c < y.dim(1); ++c) a[c] += b[c];
  }
}

void add_row_scaled(ExecCtx&, const Tensor& x, const Tensor& s, Tensor& y) {
  check_same(x, y, "add_row_scaled");
  HYLORA_CHECK(s.numel() == y.dim(0), "internal: add_row_scaled scale of ", s.numel(), " for ", y.dim(0), " rows");
  for (int64_t r = 0; r < y.dim(0); ++r) {
    float* a = y.f32() + r * y.ld();
    const float* b = x.f32() + r * x.ld();
    const float w = s.f32()[r * (s.ndim() == 2 ? s.ld() : 1)];
    for (int64_t c = 0; c < y.dim(1); ++c) a[c] += w * b[c];
  }
}

void sigmoid_inplace(ExecCtx&, Tensor& y) {
  for (int64_t r = 0; r < y.dim(0); ++r) {
    float* a = y.f32() + r * y.ld();
    for (int64_t c = 0; c < y.row_size(); ++c) a[c] = sigmoid(a[c]);
  }
}

void mul_sigmoid(ExecCtx&, const Tensor& gate, Tensor& o) {
  check_same(gate, o, "mul_sigmoid");
  for (int64_t r = 0; r < o.dim(0); ++r) {
    float* a = o.f32() + r * o.ld();
    const float* g = gate.f32() + r * gate.ld();
    for (int64_t c = 0; c < o.dim(1); ++c) a[c] *= sigmoid(g[c]);
  }
}

void silu_mul_halves(ExecCtx&, const Tensor& x, Tensor& y) {
  const int64_t rows = x.dim(0), I = y.dim(1);
  HYLORA_CHECK(x.ndim() == 2 && y.ndim() == 2 && y.dim(0) == rows && x.dim(1) == 2 * I,
               "internal: silu_mul_halves of ", shape_str(x.shape()), " into ", shape_str(y.shape()));
  const float* xp = x.f32();
  float* yp = y.f32();
  const int64_t ldx = x.ld(), ldy = y.ld();
#pragma omp parallel for if (rows * I > 16384)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < I; ++c) yp[r * ldy + c] = silu(xp[r * ldx + c]) * xp[r * ldx + I + c];
}

void relu2_inplace(ExecCtx&, Tensor& y) {
  for (int64_t r = 0; r < y.dim(0); ++r) {
    float* a = y.f32() + r * y.ld();
    for (int64_t c = 0; c < y.row_size(); ++c) {
      const float v = std::max(a[c], 0.0f);
      a[c] = v * v;
    }
  }
}

void split_head_halves(ExecCtx&, const Tensor& x, int64_t D, Tensor& a, Tensor& b) {
  const int64_t rows = x.dim(0), heads = D > 0 ? x.dim(1) / (2 * D) : 0;
  HYLORA_CHECK(heads * 2 * D == x.dim(1) && a.dim(0) == rows && b.dim(0) == rows && a.dim(1) == heads * D &&
                   b.dim(1) == heads * D,
               "internal: split_head_halves of ", shape_str(x.shape()), " with head dim ", D);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h) {
      const float* src = x.f32() + r * x.ld() + h * 2 * D;
      std::memcpy(a.f32() + r * a.ld() + h * D, src, D * sizeof(float));
      std::memcpy(b.f32() + r * b.ld() + h * D, src + D, D * sizeof(float));
    }
}

void gather_rows(ExecCtx&, const Tensor& x, const Tensor& rows, Tensor& y) {
  const int64_t R = rows.numel(), W = x.dim(1);
  HYLORA_CHECK(y.dim(0) == R && y.dim(1) == W, "internal: gather_rows into ", shape_str(y.shape()));
  for (int64_t i = 0; i < R; ++i) {
    const int32_t r = rows.i32()[i];
    HYLORA_CHECK(r >= 0 && r < x.dim(0), "internal: gather row ", r, " of ", x.dim(0));
    std::memcpy(y.f32() + i * y.ld(), x.f32() + r * x.ld(), W * sizeof(float));
  }
}

void embedding(ExecCtx&, const Tensor& table, const Tensor& ids, Tensor& y) {
  const int64_t n = ids.numel(), H = table.dim(1), V = table.dim(0);
  HYLORA_CHECK(y.dim(0) == n && y.dim(1) == H, "internal: embedding into ", shape_str(y.shape()));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = ids.i32()[i];
    // Ids are validated when the step is built; this guards the memory, not the user.
    HYLORA_CHECK(id >= 0 && id < V, "internal: token id ", id, " outside [0, ", V, ")");
    std::memcpy(y.f32() + i * y.ld(), table.f32() + static_cast<int64_t>(id) * H, H * sizeof(float));
  }
}

void copy(ExecCtx&, const Tensor& src, Tensor& dst) { copy_into(src, dst); }

void gdn_gates(ExecCtx&, const Tensor& b, const Tensor& a, const Tensor& neg_A, const Tensor& dt_bias, Tensor& g,
               Tensor& beta) {
  const int64_t T = b.dim(0), Hv = b.dim(1);
  HYLORA_CHECK(a.dim(0) == T && a.dim(1) == Hv && neg_A.numel() == Hv && dt_bias.numel() == Hv && g.dim(0) == T &&
                   g.dim(1) == Hv && beta.dim(0) == T && beta.dim(1) == Hv,
               "internal: gdn_gates of ", shape_str(b.shape()));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < Hv; ++j) {
      beta.f32()[t * beta.ld() + j] = sigmoid(b.f32()[t * b.ld() + j]);
      g.f32()[t * g.ld() + j] = neg_A.f32()[j] * softplus(a.f32()[t * a.ld() + j] + dt_bias.f32()[j]);
    }
}

}  // namespace hylora::ops::cpu
