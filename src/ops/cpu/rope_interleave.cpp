#include "ops/rope_interleave.h"

#include <algorithm>

#include "ops/rope.h"

namespace hylora::ops::cpu {

void rope_pairs_to_halves(Tensor& x, int64_t D, int64_t rot, int64_t offset) {
  const int64_t n = x.dim(0), heads = D > 0 ? x.row_size() / D : 0, half = rot / 2;
  HYLORA_CHECK(rot % 2 == 0 && offset + rot <= D && heads * D == x.row_size() && rot <= 1024,
               "internal: rope_pairs_to_halves rot ", rot, " offset ", offset, " head dim ", D);
  float* p = x.f32();
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      float tmp[1024];
      float* v = p + t * x.ld() + h * D + offset;
      for (int64_t i = 0; i < half; ++i) {
        tmp[i] = v[2 * i];
        tmp[half + i] = v[2 * i + 1];
      }
      std::copy(tmp, tmp + rot, v);
    }
}

void rope_interleaved(ExecCtx& ctx, Tensor& x, int64_t D, const Tensor& positions, const std::vector<float>& inv_freq,
                      int64_t rot, int64_t offset, float attention_scaling) {
  rope_pairs_to_halves(x, D, rot, offset);
  rope_neox(ctx, x, D, positions, inv_freq, rot, offset, attention_scaling);
}

}  // namespace hylora::ops::cpu
