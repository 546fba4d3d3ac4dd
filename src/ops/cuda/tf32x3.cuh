#pragma once
// fp32-accurate matrix products on tensor cores: 3xTF32 with mma.sync m16n8k8. Each fp32 operand x is split into a
// tf32 high part h = tf32(x) and a tf32 residual l = tf32(x − h) (x − h is exact in fp32); a·b ≈ a_h b_h + a_h b_l +
// a_l b_h, accumulated in fp32, leaves a relative error of about 2^-21 per product (the dropped a_l b_l term and the
// residuals' own rounding), i.e. fp32-level results at several times the fp32 CUDA-core rate. Used by gdn_chunked.cu.
//
// Fragment layout of m16n8k8 (.tf32, PTX ISA), lane = 4·g + t (g = lane >> 2, t = lane & 3):
//   A 16×8 (row):  a0 (g, t)  a1 (g+8, t)  a2 (g, t+4)  a3 (g+8, t+4)
//   B  8×8 (col):  b0 (t, g)  b1 (t+4, g)
//   C 16×8:        c0 (g, 2t) c1 (g, 2t+1) c2 (g+8, 2t) c3 (g+8, 2t+1)
#include <cstdint>

#include "ops/cuda/mma_sm80.cuh"  // mma_tf32

namespace hylora::cuda::detail {

__device__ __forceinline__ void split_tf32(float x, uint32_t& hi, uint32_t& lo) {
  uint32_t h, l;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(h) : "f"(x));
  h &= 0xffffe000u;  // the tf32 bits only, so that x − h below is the exact residual
  const float r = x - __uint_as_float(h);
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(l) : "f"(r));
  hi = h;
  lo = l & 0xffffe000u;
}

// One warp: acc[f] (16 × 8, C layout above) += A[16, K] · B[K, 8f .. 8f+7] for f < nf (nf ≤ NF, warp-uniform), where
// A(i, k) = A[i·ai + k·ak] and B(k, n) = B[k·bk + n·bn] (strides: either operand may be read transposed), K a
// multiple of 8. Both operands are read from shared memory (or any memory) with scalar loads.
template <int NF>
__device__ __forceinline__ void warp_mma_3xtf32(float (&acc)[NF][4], const float* A, int ai, int ak, const float* B,
                                                int bk, int bn, int K, int nf = NF) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll 2
  for (int k0 = 0; k0 < K; k0 += 8) {
    uint32_t ah[4], al[4];
    split_tf32(A[g * ai + (k0 + t) * ak], ah[0], al[0]);
    split_tf32(A[(g + 8) * ai + (k0 + t) * ak], ah[1], al[1]);
    split_tf32(A[g * ai + (k0 + t + 4) * ak], ah[2], al[2]);
    split_tf32(A[(g + 8) * ai + (k0 + t + 4) * ak], ah[3], al[3]);
#pragma unroll
    for (int f = 0; f < NF; ++f) {
      if (f < nf) {
        uint32_t bh[2], bl[2];
        split_tf32(B[(k0 + t) * bk + (8 * f + g) * bn], bh[0], bl[0]);
        split_tf32(B[(k0 + t + 4) * bk + (8 * f + g) * bn], bh[1], bl[1]);
        mma_tf32(acc[f], al, bh);  // small terms first
        mma_tf32(acc[f], ah, bl);
        mma_tf32(acc[f], ah, bh);
      }
    }
  }
}

// Row and column (within the 16 × 8·NF warp tile) of accumulator element e (0..3) of fragment f.
__device__ __forceinline__ int acc_row(int e) { return ((threadIdx.x & 31) >> 2) + (e >= 2 ? 8 : 0); }
__device__ __forceinline__ int acc_col(int f, int e) { return 8 * f + 2 * (threadIdx.x & 3) + (e & 1); }

}  // namespace hylora::cuda::detail
