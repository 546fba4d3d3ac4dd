#include "ops/rope.h"

#include <cmath>

namespace hylora::ops::cpu {

std::vector<float> rope_inv_freq(int64_t rot, double theta) {
  std::vector<float> inv(rot / 2);
  for (int64_t i = 0; i < rot / 2; ++i) {
    const float expo = static_cast<float>(2 * i) / static_cast<float>(rot);
    inv[i] = 1.0f / std::pow(static_cast<float>(theta), expo);
  }
  return inv;
}

void rope_neox(ExecCtx&, Tensor& x, int64_t D, const Tensor& positions, const std::vector<float>& inv_freq,
               int64_t rot, int64_t offset, float attention_scaling) {
  const int64_t n = x.dim(0), half = rot / 2, heads = D > 0 ? x.row_size() / D : 0;
  HYLORA_CHECK(positions.numel() == n && heads * D == x.row_size() && offset + rot <= D &&
                   static_cast<int64_t>(inv_freq.size()) == half,
               "internal: rope shapes x ", shape_str(x.shape()), " head dim ", D, " rot ", rot);
  float* p = x.f32();
  constexpr int64_t kMaxHalf = 512;
  HYLORA_CHECK(half <= kMaxHalf, "internal: rope of ", rot, " dims");
  for (int64_t t = 0; t < n; ++t) {
    float c[kMaxHalf], s[kMaxHalf];
    for (int64_t i = 0; i < half; ++i) {
      const float ang = static_cast<float>(positions.i32()[t]) * inv_freq[i];
      c[i] = static_cast<float>(std::cos(static_cast<double>(ang))) * attention_scaling;
      s[i] = static_cast<float>(std::sin(static_cast<double>(ang))) * attention_scaling;
    }
    for (int64_t h = 0; h < heads; ++h) {
      float* v = p + t * x.ld() + h * D + offset;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

}  // namespace hylora::ops::cpu
