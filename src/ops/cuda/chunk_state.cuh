#pragma once
// The state update that ends every chunk of the chunked Mamba2 scan (ssd_chunked.cu; gdn_chunked.cu does its own on
// tensor cores):
//   S ← γ · S + Rᵀ (e ⊙ D)
// S [rows, 32] fp32 in shared memory (a block's 32-column tile of the state), R [nt, ldr] the chunk's key-side rows
// (B, rows = N), D [nt, 32] the chunk's value-side rows (Δ·x), e[sc] = e^{b_last − b_sc}, γ = e^{b_last}. 256
// threads: thread (rg, cg) owns rows rg + 16a (a < 8, so rows ≤ 128) and columns cg, cg + 16 — its entries only, so
// no barrier inside; the caller synchronises before S is read again.
namespace hylora::cuda::detail {

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
