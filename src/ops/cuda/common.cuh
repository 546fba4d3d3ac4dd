// Shared helpers of the CUDA kernels: the activation dtype tag the host functions take, bf16/fp32 loads and stores
// (always computing in fp32), warp reductions, and the segment -> tile mapping that the varlen kernels use to turn
// a flat block index into (segment, tile within segment) from device-side offsets (graph-safe: grids are sized from
// host-known upper bounds only).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/dtype.h"

namespace hylora::cuda::detail {

__device__ __forceinline__ float ld(const float* p) { return *p; }
__device__ __forceinline__ float ld(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ void st(float* p, float v) { *p = v; }
__device__ __forceinline__ void st(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
// Rounds v to what a store of type T would keep (fp32: identity).
__device__ __forceinline__ float round_to(float v, const float*) { return v; }
__device__ __forceinline__ float round_to(float v, const __nv_bfloat16*) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

// Loads 16 bytes (4 fp32 or 8 bf16) as floats. p must be 16-byte aligned.
__device__ __forceinline__ void ld16(const float* p, float* v) {
  const float4 q = *reinterpret_cast<const float4*>(p);
  v[0] = q.x;
  v[1] = q.y;
  v[2] = q.z;
  v[3] = q.w;
}
// The 8 bf16 values packed in 16 bytes, as floats (for callers that choose their own load, e.g. streaming).
__device__ __forceinline__ void bf16x8_to_float(const uint4& q, float* v) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&q);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    v[2 * i] = f.x;
    v[2 * i + 1] = f.y;
  }
}
__device__ __forceinline__ void ld16(const __nv_bfloat16* p, float* v) {
  bf16x8_to_float(*reinterpret_cast<const uint4*>(p), v);
}

__host__ __device__ __forceinline__ int64_t imin64(int64_t a, int64_t b) { return a < b ? a : b; }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float silu(float x) { return x / (1.0f + __expf(-x)); }
__device__ __forceinline__ float silu_exact(float x) { return x / (1.0f + expf(-x)); }

// Block-wide sum (any blockDim multiple of 32, ≤ 1024). `scratch` holds 32 floats. Every thread gets the sum.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[w] = v;
  __syncthreads();
  float r = lane < nw ? scratch[lane] : 0.0f;
  r = warp_sum(r);
  return r;
}

// Maps flat tile index `b` to (segment, tile within segment) where segment g has indptr[g+1]-indptr[g] rows cut into
// tiles of `tile_rows`. Returns false if b is past the last tile. Called by all threads of the block (uses
// shared memory and __syncthreads); O(nseg / blockDim) per block.
__device__ inline bool find_tile(const int32_t* indptr, int nseg, int tile_rows, int64_t b, int* seg, int* tile) {
  __shared__ int64_t s_base;
  __shared__ int s_seg, s_tile;
  if (threadIdx.x == 0) {
    s_base = 0;
    s_seg = -1;
  }
  __syncthreads();
  for (int g0 = 0; g0 < nseg; g0 += blockDim.x) {
    const int g = g0 + threadIdx.x;
    int64_t nt = 0;
    if (g < nseg) nt = (indptr[g + 1] - indptr[g] + tile_rows - 1) / tile_rows;
    // inclusive scan over the block (simple two-level warp scan)
    int64_t x = nt;
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    for (int o = 1; o < 32; o <<= 1) {
      int64_t y = __shfl_up_sync(0xffffffffu, x, o);
      if (lane >= o) x += y;
    }
    __shared__ int64_t wsum[32];
    if (lane == 31) wsum[w] = x;
    __syncthreads();
    int64_t off = 0;
    for (int i = 0; i < w; ++i) off += wsum[i];
    const int64_t incl = s_base + off + x, excl = incl - nt;
    if (g < nseg && nt > 0 && b >= excl && b < incl) {
      s_seg = g;
      s_tile = static_cast<int>(b - excl);
    }
    __syncthreads();
    if (threadIdx.x == blockDim.x - 1) s_base = incl;
    __syncthreads();
    if (s_seg >= 0) break;
  }
  *seg = s_seg;
  *tile = s_tile;
  const bool ok = s_seg >= 0;
  __syncthreads();
  return ok;
}

// find_tile without the scan, for grids launched at the bound (indptr[nseg] − indptr[0]) / tile_rows + nseg (or
// more): segment g owns the flat tile indices [start(g), start(g+1)) with start(g) = (indptr[g] − indptr[0]) /
// tile_rows + g, strictly increasing and never fewer than its ceil(rows / tile_rows) tiles (at most one spare, and
// one for an empty segment). A block finds its segment by a binary search over start() (O(log nseg) reads of indptr,
// the same in every thread: no shared memory, no barrier) and returns false on a spare tile or past the end. Unlike
// find_tile, the tiles of a segment are not numbered consecutively across segments, so the grid must be at least the
// bound above (lora.cu's tiles_bound is).
__device__ inline bool find_tile_bounded(const int32_t* indptr, int nseg, int tile_rows, int64_t b, int* seg,
                                         int* tile) {
  if (nseg <= 0) return false;
  const int32_t base = indptr[0];
  auto start = [&](int g) { return static_cast<int64_t>((indptr[g] - base) / tile_rows) + g; };
  if (b < 0 || b >= start(nseg)) return false;
  int lo = 0, hi = nseg - 1;  // largest g with start(g) <= b
  while (lo < hi) {
    const int mid = lo + (hi - lo + 1) / 2;
    if (start(mid) <= b)
      lo = mid;
    else
      hi = mid - 1;
  }
  const int64_t t = b - start(lo);
  if (t * tile_rows >= indptr[lo + 1] - indptr[lo]) return false;  // spare tile (or empty segment)
  *seg = lo;
  *tile = static_cast<int>(t);
  return true;
}

}  // namespace hylora::cuda::detail
