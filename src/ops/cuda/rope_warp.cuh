#pragma once
// The rotation of one (row, head) by one warp, shared by misc.cu's rope (T = fp32 / bf16, int64 positions) and
// extra.cu's (fp32, int32 positions, grid-stride): lane + 32c owns rotated pair c (rot ≤ 512).
#include <cuda_runtime.h>

#include "ops/cuda/common.cuh"

namespace hylora::cuda::detail {

// v: the head's first rotated dim; pair i = (v[i], v[i + rot/2]), or (v[2i], v[2i + 1]) when interleaved, rotated by
// the angle p·inv_freq[i] (fp32; its cos and sin in double, rounded to fp32, times scaling) and written back as
// halves (v[i], v[i + rot/2]). Every lane reads all its pairs before the warp writes (interleaved pairs overlap the
// halves layout).
template <typename T>
__device__ __forceinline__ void rope_head_warp(T* v, float p, const float* __restrict__ inv_freq, int rot,
                                               float scaling, bool interleaved) {
  const int lane = threadIdx.x & 31;
  const int half = rot / 2;
  float ra[8], rb[8], cs[8], sn[8];
#pragma unroll
  for (int c = 0; c < 8; ++c) {
    const int i = lane + 32 * c;
    if (i < half) {
      ra[c] = ld(v + (interleaved ? 2 * i : i));
      rb[c] = ld(v + (interleaved ? 2 * i + 1 : i + half));
      const float ang = p * inv_freq[i];
      double sd, cd;
      sincos(static_cast<double>(ang), &sd, &cd);
      cs[c] = static_cast<float>(cd) * scaling;
      sn[c] = static_cast<float>(sd) * scaling;
    }
  }
  __syncwarp();
#pragma unroll
  for (int c = 0; c < 8; ++c) {
    const int i = lane + 32 * c;
    if (i < half) {
      st(v + i, ra[c] * cs[c] - rb[c] * sn[c]);
      st(v + i + half, rb[c] * cs[c] + ra[c] * sn[c]);
    }
  }
}

}  // namespace hylora::cuda::detail
