#pragma once
// The end of a split-KV decode block, shared by attention_decode.cu (CUDA cores) and attention_decode_mma.cu (tensor
// cores): the block's warps each ran the online softmax over their own key tiles, and their partial states of one
// (row, head) pair are merged here. No inline PTX: tests/cuda/emu compiles it on the CPU with attention_decode.cu.
#include <cmath>
#include <cstdint>

#include "ops/cuda/attention.h"
#include "ops/cuda/common.cuh"

namespace hylora::cuda::detail {

// Pair i (row row0 + i / HG, head h0 + i % HG), output column c. Warp u left its running max s_m[u][i] (log2 units),
// its sum s_l[u][i] and its unnormalised output Os[(u·NQ + i)·ros + c] in shared memory; o = Σ_u 2^{m_u − M} O_u /
// Σ_u 2^{m_u − M} l_u with M = max_u m_u (warps that saw no visible key skipped; 0 when no warp did). One split
// (nsplit == 1): o goes to p.o as type T. Else the split's workspace entries (attention_decode.h's layout
// [T, nH, nsplit, Dv] then [T, nH, nsplit]) get o and lse2 = M + log2 L (−inf: nothing visible), for the combine
// kernel.
template <typename T, int NQ>
__device__ __forceinline__ void merge_warps_store(const PagedAttention& p, int nw, const float (*s_m)[NQ],
                                                  const float (*s_l)[NQ], const float* Os, int ros, int i, int c,
                                                  int Dv, int row0, int h0, int HG, int nsplit, int split,
                                                  float* ws) {
  float M = -INFINITY;
  for (int u = 0; u < nw; ++u) M = fmaxf(M, s_m[u][i]);
  float L = 0.0f, o = 0.0f;
  for (int u = 0; u < nw; ++u) {
    if (s_m[u][i] == -INFINITY) continue;
    const float f = exp2f(s_m[u][i] - M);
    L += f * s_l[u][i];
    o += f * Os[(u * NQ + i) * ros + c];
  }
  const int64_t t = row0 + i / HG, h = h0 + i % HG;
  if (nsplit == 1) {
    st(static_cast<T*>(p.o) + t * p.ldo + h * Dv + c, L > 0.0f ? o / L : 0.0f);
  } else {
    const int64_t idx = (t * p.nH + h) * nsplit + split;
    ws[idx * Dv + c] = L > 0.0f ? o / L : 0.0f;
    if (c == 0) ws[p.T * p.nH * nsplit * Dv + idx] = L > 0.0f ? M + log2f(L) : -INFINITY;
  }
}

}  // namespace hylora::cuda::detail
