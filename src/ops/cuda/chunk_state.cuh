#pragma once
// Helpers of the chunked scans (chunks of 64 tokens): the prefix sum of a chunk's log decays (ssd_chunked.cu and
// gdn_chunked.cu), and the state update that ends every chunk of the chunked Mamba2 scan (ssd_chunked.cu;
// gdn_chunked.cu does its own on tensor cores):
//   S ← γ · S + Rᵀ (e ⊙ D)
// S [rows, 32] fp32 in shared memory (a block's 32-column tile of the state), R [nt, ldr] the chunk's key-side rows
// (B, rows = N), D [nt, 32] the chunk's value-side rows (Δ·x), e[sc] = e^{b_last − b_sc}, γ = e^{b_last}. 256
// threads: thread (rg, cg) owns rows rg + 16a (a < 8, so rows ≤ 128) and columns cg, cg + 16 — its entries only, so
// no barrier inside; the caller synchronises before S is read again.
namespace hylora::cuda::detail {

// Inclusive prefix sum of a chunk's 64 log decays b[0, 64) by one warp, as two 32-element halves: lane l gets
// x0 = b_0 + … + b_l and x1 = b_0 + … + b_{l+32} (the caller stores them back and derives its decay factors).
__device__ __forceinline__ void chunk_prefix_sum64(const float* b, float& x0, float& x1) {
  const int lane = threadIdx.x & 31;
  x0 = b[lane];
  x1 = b[lane + 32];
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const float y0 = __shfl_up_sync(0xffffffffu, x0, off), y1 = __shfl_up_sync(0xffffffffu, x1, off);
    if (lane >= off) {
      x0 += y0;
      x1 += y1;
    }
  }
  x1 += __shfl_sync(0xffffffffu, x0, 31);
}

__device__ __forceinline__ void chunk_state_update(float* Ss, const float* R, int ldr, const float* D,
                                                   const float* e, int nt, int rows, int rg, int cg, float gamma) {
  constexpr int kTile = 32;
  float acc[8][2];
#pragma unroll
  for (int a = 0; a < 8; ++a) {
    const int i = rg + 16 * a;
    acc[a][0] = i < rows ? gamma * Ss[i * kTile + cg] : 0.0f;
    acc[a][1] = i < rows ? gamma * Ss[i * kTile + cg + 16] : 0.0f;
  }
  for (int sc = 0; sc < nt; ++sc) {
    const float d0 = e[sc] * D[sc * kTile + cg], d1 = e[sc] * D[sc * kTile + cg + 16];
    const float* r = R + sc * ldr;
#pragma unroll
    for (int a = 0; a < 8; ++a) {
      const int i = rg + 16 * a;
      if (i < rows) {
        acc[a][0] = fmaf(r[i], d0, acc[a][0]);
        acc[a][1] = fmaf(r[i], d1, acc[a][1]);
      }
    }
  }
#pragma unroll
  for (int a = 0; a < 8; ++a) {
    const int i = rg + 16 * a;
    if (i < rows) {
      Ss[i * kTile + cg] = acc[a][0];
      Ss[i * kTile + cg + 16] = acc[a][1];
    }
  }
}

}  // namespace hylora::cuda::detail
