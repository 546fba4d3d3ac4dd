// Decode GEMM, bf16 weights (and fp32 weights at one row: gemv_f32) (math in gemv.h). Block = 8 warps, a warp owns two output columns n (two weight rows).
// Unsplit (N large): the block's warps own 16 consecutive columns and each warp runs over all of K, lane l reading
// 8 bf16 at k = 8l, 8l + 256, ... from both rows (16-byte streaming loads: the weights are read once per step) and the
// matching fp32 x values (two 16-byte loads per row of x, from L1/L2: x is a few KB), rounded to bf16 as the cuBLASLt
// path rounds them; a warp sum per (row of x, column). Split (N small, e.g. GDN's in_proj_ba with 64 columns, where
// 16 columns a block would leave most SMs idle): a block owns 2 columns and its 8 warps take interleaved K ranges,
// then sum through shared memory. MR (1, 2, 4 or 8) bounds M at compile time so the accumulators stay in registers.
#include <type_traits>

#include "ops/cuda/common.cuh"
#include "ops/cuda/gemv.h"

namespace hylora::cuda {
using namespace detail;

namespace {
constexpr int kWarps = 8;
constexpr int kCols = 2;  // output columns per warp

__device__ __forceinline__ float bf16_round(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

// 8 consecutive fp32 x values (16-byte aligned); rounded to bf16 for bf16 weights (as the cuBLASLt path rounds them),
// kept for fp32 weights (the float32 mode's products are fp32 × fp32).
template <typename TW>
__device__ __forceinline__ void load_x8(const float* p, float* v) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(p));
  const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
  const float f[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
  for (int e = 0; e < 8; ++e) v[e] = std::is_same_v<TW, float> ? f[e] : bf16_round(f[e]);
}

// 8 weights (16-byte aligned), streamed (evict-first: a decode step reads each weight once).
__device__ __forceinline__ void load_w8(const __nv_bfloat16* p, float* v) {
  bf16x8_to_float(__ldcs(reinterpret_cast<const uint4*>(p)), v);
}
__device__ __forceinline__ void load_w8(const float* p, float* v) {
  const float4 a = __ldcs(reinterpret_cast<const float4*>(p));
  const float4 b = __ldcs(reinterpret_cast<const float4*>(p) + 1);
  v[0] = a.x;
  v[1] = a.y;
  v[2] = a.z;
  v[3] = a.w;
  v[4] = b.x;
  v[5] = b.y;
  v[6] = b.z;
  v[7] = b.w;
}

template <typename TW, int MR>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(const float* __restrict__ x, int64_t ldx,
                                                           const TW* __restrict__ W, int64_t ldw,
                                                           float* __restrict__ y, int64_t ldy, int M, int64_t N,
                                                           int64_t K, bool accumulate, bool split) {
  __shared__ float red[kWarps][MR * kCols];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  // Columns of this warp; the split layout's are block-uniform, so its early return precedes the barrier uniformly.
  const int64_t n0 = split ? static_cast<int64_t>(blockIdx.x) * kCols
                           : (static_cast<int64_t>(blockIdx.x) * kWarps + warp) * kCols;
  if (n0 >= N) return;
  const bool second = n0 + 1 < N;
  const TW* w0 = W + n0 * ldw;
  const TW* w1 = W + (second ? n0 + 1 : n0) * ldw;  // a lone last column reads its own row twice
  const int64_t k_begin = (static_cast<int64_t>(split ? warp : 0) * 32 + lane) * 8;
  const int64_t k_step = 256 * (split ? kWarps : 1);
  float acc[MR][kCols];
#pragma unroll
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = 0.0f;
#pragma unroll 4
  for (int64_t k = k_begin; k < K; k += k_step) {
    float a[8], b[8];
    load_w8(w0 + k, a);
    load_w8(w1 + k, b);
#pragma unroll
    for (int m = 0; m < MR; ++m) {
      if (m < M) {
        float xv[8];
        load_x8<TW>(x + m * ldx + k, xv);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          acc[m][0] += xv[e] * a[e];
          acc[m][1] += xv[e] * b[e];
        }
      }
    }
  }
#pragma unroll
  for (int m = 0; m < MR; ++m)
#pragma unroll
    for (int c = 0; c < kCols; ++c) acc[m][c] = warp_sum(acc[m][c]);
  if (split) {
    if (lane == 0)
#pragma unroll
      for (int m = 0; m < MR; ++m)
#pragma unroll
        for (int c = 0; c < kCols; ++c) red[warp][m * kCols + c] = acc[m][c];
    __syncthreads();
    if (threadIdx.x >= MR * kCols) return;
    const int m = threadIdx.x / kCols, c = threadIdx.x % kCols;
    if (m >= M || (c == 1 && !second)) return;
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) v += red[w][threadIdx.x];
    float* out = y + m * ldy + n0 + c;
    *out = accumulate ? *out + v : v;
    return;
  }
  if (lane != 0) return;
#pragma unroll
  for (int m = 0; m < MR; ++m) {
    if (m >= M) break;
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      if (c == 1 && !second) break;
      float* out = y + m * ldy + n0 + c;
      *out = accumulate ? *out + acc[m][c] : acc[m][c];
    }
  }
}

template <typename TW, int MR>
void launch(const float* x, int64_t ldx, const TW* W, int64_t ldw, float* y, int64_t ldy, int M, int64_t N, int64_t K,
            bool accumulate, cudaStream_t stream) {
  // Split K when the unsplit grid would give fewer than ~2 blocks per SM (132 SMs on an H200; the rule only picks a
  // layout, any value is correct).
  const int64_t unsplit_blocks = (N + kWarps * kCols - 1) / (kWarps * kCols);
  const bool split = unsplit_blocks < 264 && K >= 256 * kWarps / 2;
  const int64_t blocks = split ? (N + kCols - 1) / kCols : unsplit_blocks;
  gemv_kernel<TW, MR><<<static_cast<unsigned>(blocks), kWarps * 32, 0, stream>>>(x, ldx, W, ldw, y, ldy, M, N, K,
                                                                                 accumulate, split);
}
}  // namespace

bool gemv_bf16_fits(const float* x, int64_t ldx, const void* W, int64_t ldw, int64_t M, int64_t K) {
  return M >= 1 && M <= kGemvMaxRows && K > 0 && K % 8 == 0 && ldw % 8 == 0 && ldx % 4 == 0 &&
         reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(W) % 16 == 0;
}

cudaError_t gemv_bf16(const float* x, int64_t ldx, const void* W, int64_t ldw, float* y, int64_t ldy, int64_t M,
                      int64_t N, int64_t K, bool accumulate, cudaStream_t stream) {
  if (!gemv_bf16_fits(x, ldx, W, ldw, M, K)) return cudaErrorInvalidValue;
  if (N <= 0) return cudaSuccess;
  const auto* w = static_cast<const __nv_bfloat16*>(W);
  const int m = static_cast<int>(M);
  if (M == 1)
    launch<__nv_bfloat16, 1>(x, ldx, w, ldw, y, ldy, m, N, K, accumulate, stream);
  else if (M == 2)
    launch<__nv_bfloat16, 2>(x, ldx, w, ldw, y, ldy, m, N, K, accumulate, stream);
  else if (M <= 4)
    launch<__nv_bfloat16, 4>(x, ldx, w, ldw, y, ldy, m, N, K, accumulate, stream);
  else
    launch<__nv_bfloat16, 8>(x, ldx, w, ldw, y, ldy, m, N, K, accumulate, stream);
  return cudaGetLastError();
}

bool gemv_f32_fits(const float* x, int64_t ldx, const float* W, int64_t ldw, int64_t M, int64_t K) {
  return M == 1 && K > 0 && K % 8 == 0 && ldw % 4 == 0 && ldx % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(W) % 16 == 0;
}

cudaError_t gemv_f32(const float* x, int64_t ldx, const float* W, int64_t ldw, float* y, int64_t ldy, int64_t M,
                     int64_t N, int64_t K, bool accumulate, cudaStream_t stream) {
  if (!gemv_f32_fits(x, ldx, W, ldw, M, K)) return cudaErrorInvalidValue;
  if (N <= 0) return cudaSuccess;
  launch<float, 1>(x, ldx, W, ldw, y, ldy, 1, N, K, accumulate, stream);
  return cudaGetLastError();
}

}  // namespace hylora::cuda
