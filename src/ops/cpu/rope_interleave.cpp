#include "ops/rope_interleave.h"

#include <algorithm>

#include "ops/rope.h"

namespace hylora::ops {

void rope_pairs_to_halves_inplace(Tensor& x, int64_t rot, int64_t offset) {
  const int64_t rows = x.dim(0) * x.dim(1), D = x.dim(2), half = rot / 2;
  HYLORA_CHECK(rot % 2 == 0 && offset + rot <= D, "internal: rope_pairs_to_halves rot ", rot, " offset ", offset,
               " head dim ", D);
  float* p = x.f32();
#pragma omp parallel
  {
    std::vector<float> tmp(rot);
#pragma omp for
    for (int64_t r = 0; r < rows; ++r) {
      float* v = p + r * D + offset;
      for (int64_t i = 0; i < half; ++i) {
        tmp[i] = v[2 * i];
        tmp[half + i] = v[2 * i + 1];
      }
      std::copy(tmp.begin(), tmp.end(), v);
    }
  }
}

void rope_interleaved_inplace(Tensor& x, const std::vector<int64_t>& positions, const std::vector<float>& inv_freq,
                              int64_t rot, int64_t offset, float attention_scaling) {
  rope_pairs_to_halves_inplace(x, rot, offset);
  rope_neox_inplace(x, positions, inv_freq, rot, offset, attention_scaling);
}

}  // namespace hylora::ops
