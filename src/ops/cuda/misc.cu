// RoPE (one warp per (row, head): read the rotated pairs, __syncwarp, write), MoE routing (one warp per token: the
// expert scores in shared memory, k rounds of warp argmax with lower-index tie-break), log-probabilities (one block
// per row: max, Σ exp, then the target's logit minus the log-sum-exp).
#include <cmath>

#include "ops/cuda/common.cuh"
#include "ops/cuda/misc.h"
#include "ops/cuda/rope_warp.cuh"

namespace hylora::cuda {
using namespace detail;

namespace {

template <typename T>
__global__ void rope_kernel(T* x, int64_t ldx, int64_t T_, int heads, int head_dim, const int64_t* __restrict__ pos,
                            const float* __restrict__ inv_freq, int rot, int offset, float scaling,
                            bool interleaved) {
  const int64_t wid = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (wid >= T_ * heads) return;
  const int64_t t = wid / heads;
  const int h = static_cast<int>(wid % heads);
  rope_head_warp(x + t * ldx + static_cast<int64_t>(h) * head_dim + offset, static_cast<float>(pos[t]), inv_freq, rot,
                 scaling, interleaved);
}

// warp argmax over sh[0..n): largest value, lowest index on ties; returns index (all lanes), 0 when all are NaN
__device__ int warp_argmax(const float* sh, int n) {
  const int lane = threadIdx.x & 31;
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  for (int e = lane; e < n; e += 32) {
    const float v = sh[e];
    if (v > bv || (v == bv && e < bi)) {
      bv = v;
      bi = e;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) {
      bv = ov;
      bi = oi;
    }
  }
  // All NaN (a padding row of a CUDA-graph bucket holds whatever the scratch held): pick 0, never an index past n,
  // so that the expert ids stay in range for the permutation (the row's result is discarded).
  return bi < n ? bi : 0;
}

constexpr int kRouteWarps = 4;

__global__ void route_softmax_kernel(const float* __restrict__ logits, int64_t ldl, int64_t T, int E, int k,
                                     bool normalize, int32_t* ids, float* weights) {
  extern __shared__ float sh[];  // [warps][E]
  const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kRouteWarps + w;
  if (t >= T) return;
  float* p = sh + w * E;
  const float* l = logits + t * ldl;
  float mx = -INFINITY;
  for (int e = lane; e < E; e += 32) mx = fmaxf(mx, l[e]);
  mx = warp_max(mx);
  float sum = 0.0f;
  for (int e = lane; e < E; e += 32) {
    const float x = expf(l[e] - mx);
    p[e] = x;
    sum += x;
  }
  sum = warp_sum(sum);
  for (int e = lane; e < E; e += 32) p[e] /= sum;
  __syncwarp();
  float tot = 0.0f;
  float sel[32];
  int idx[32];
  for (int j = 0; j < k; ++j) {
    const int b = warp_argmax(p, E);
    __syncwarp();
    const float val = p[b];
    __syncwarp();
    if (lane == 0) p[b] = -INFINITY;
    __syncwarp();
    if (j < 32) {
      sel[j] = val;
      idx[j] = b;
    }
    tot += val;
  }
  if (lane == 0)
    for (int j = 0; j < k; ++j) {
      ids[t * k + j] = idx[j];
      weights[t * k + j] = normalize ? sel[j] / tot : sel[j];
    }
}

__global__ void route_sigmoid_kernel(const float* __restrict__ logits, int64_t ldl, const float* __restrict__ bias,
                                     int64_t T, int E, int n_group, int topk_group, int k, bool normalize, float scale,
                                     int32_t* ids, float* weights) {
  extern __shared__ float sh[];  // [warps][2E + 64]
  const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kRouteWarps + w;
  if (t >= T) return;
  float* s = sh + w * (2 * E + 64);
  float* sc = s + E;
  float* gsc = sc + E;  // [32]
  const float* l = logits + t * ldl;
  for (int e = lane; e < E; e += 32) {
    const float sg = 1.0f / (1.0f + expf(-l[e]));
    s[e] = sg;
    sc[e] = sg + bias[e];
  }
  __syncwarp();
  const int per = E / n_group;
  if (lane < n_group) {
    float b1 = -INFINITY, b2 = -INFINITY;
    for (int e = lane * per; e < (lane + 1) * per; ++e) {
      const float v = sc[e];
      if (v > b1) {
        b2 = b1;
        b1 = v;
      } else if (v > b2) {
        b2 = v;
      }
    }
    gsc[lane] = per >= 2 ? b1 + b2 : b1;
  }
  __syncwarp();
  unsigned keep = 0;
  for (int j = 0; j < topk_group; ++j) {
    const int b = warp_argmax(gsc, n_group);
    __syncwarp();
    if (lane == 0) gsc[b] = -INFINITY;
    __syncwarp();
    keep |= 1u << b;
  }
  for (int e = lane; e < E; e += 32)
    if (!((keep >> (e / per)) & 1u)) sc[e] = -INFINITY;
  __syncwarp();
  float tot = 0.0f;
  float sel[32];
  int idx[32];
  for (int j = 0; j < k; ++j) {
    const int b = warp_argmax(sc, E);
    __syncwarp();
    if (lane == 0) sc[b] = -INFINITY;
    __syncwarp();
    if (j < 32) {
      sel[j] = s[b];
      idx[j] = b;
    }
    tot += s[b];
  }
  if (lane == 0)
    for (int j = 0; j < k; ++j) {
      ids[t * k + j] = idx[j];
      weights[t * k + j] = (normalize ? sel[j] / (tot + 1e-20f) : sel[j]) * scale;
    }
}

template <typename T>
__global__ void logprob_kernel(const T* __restrict__ logits, int64_t ldl, int64_t V, const int32_t* __restrict__ rows,
                               const int32_t* __restrict__ target, float* logprob, float* lse_out) {
  __shared__ float scratch[32];
  __shared__ float s_mx;
  const int64_t r = blockIdx.x;
  const int64_t row = rows ? rows[r] : r;
  const T* l = logits + row * ldl;
  float mx = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, ld(l + v));
  mx = warp_max(mx);
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = mx;
  __syncthreads();
  if (threadIdx.x < 32) {
    float m2 = threadIdx.x < (blockDim.x >> 5) ? scratch[threadIdx.x] : -INFINITY;
    m2 = warp_max(m2);
    if (threadIdx.x == 0) s_mx = m2;
  }
  __syncthreads();
  mx = s_mx;
  float sum = 0.0f;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) sum += expf(ld(l + v) - mx);
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) {
    const float lse = mx + logf(sum);
    logprob[r] = ld(l + target[r]) - lse;
    if (lse_out) lse_out[r] = lse;
  }
}
}  // namespace

cudaError_t rope(DType dt, void* x, int64_t ldx, int64_t T, int64_t heads, int64_t head_dim,
                 const int64_t* positions, const float* inv_freq, int64_t rot, int64_t offset, float scaling,
                 bool interleaved, cudaStream_t stream) {
  if (T == 0 || heads == 0 || rot == 0) return cudaSuccess;
  if (rot % 2 != 0 || rot > 512 || offset + rot > head_dim) return cudaErrorInvalidValue;
  const int64_t threads = T * heads * 32;
  const unsigned blocks = static_cast<unsigned>((threads + 255) / 256);
  const int h = static_cast<int>(heads), hd = static_cast<int>(head_dim), r = static_cast<int>(rot),
            o = static_cast<int>(offset);
  if (dt == DType::f32)
    rope_kernel<float><<<blocks, 256, 0, stream>>>(static_cast<float*>(x), ldx, T, h, hd, positions, inv_freq, r, o,
                                                   scaling, interleaved);
  else
    rope_kernel<__nv_bfloat16><<<blocks, 256, 0, stream>>>(static_cast<__nv_bfloat16*>(x), ldx, T, h, hd, positions,
                                                           inv_freq, r, o, scaling, interleaved);
  return cudaGetLastError();
}

cudaError_t moe_route_softmax_topk(const float* logits, int64_t ld, int64_t T, int64_t E, int64_t k, bool normalize,
                                   int32_t* ids, float* weights, cudaStream_t stream) {
  if (T == 0) return cudaSuccess;
  if (E > 1024 || k > 32 || k > E) return cudaErrorInvalidValue;
  const size_t smem = sizeof(float) * kRouteWarps * E;
  route_softmax_kernel<<<static_cast<unsigned>((T + kRouteWarps - 1) / kRouteWarps), 32 * kRouteWarps, smem,
                         stream>>>(logits, ld, T, static_cast<int>(E), static_cast<int>(k), normalize, ids, weights);
  return cudaGetLastError();
}

cudaError_t moe_route_sigmoid_grouped(const float* logits, int64_t ld, const float* bias, int64_t T, int64_t E,
                                      int64_t n_group, int64_t topk_group, int64_t k, bool normalize, float scale,
                                      int32_t* ids, float* weights, cudaStream_t stream) {
  if (T == 0) return cudaSuccess;
  if (E > 1024 || k > 32 || n_group < 1 || n_group > 32 || E % n_group != 0 || topk_group > n_group)
    return cudaErrorInvalidValue;
  const size_t smem = sizeof(float) * kRouteWarps * (2 * E + 64);
  route_sigmoid_kernel<<<static_cast<unsigned>((T + kRouteWarps - 1) / kRouteWarps), 32 * kRouteWarps, smem,
                         stream>>>(logits, ld, bias, T, static_cast<int>(E), static_cast<int>(n_group),
                                   static_cast<int>(topk_group), static_cast<int>(k), normalize, scale, ids, weights);
  return cudaGetLastError();
}

cudaError_t logprobs(DType dt, const void* logits, int64_t ld, int64_t V, const int32_t* rows, int64_t R,
                     const int32_t* target, float* logprob, float* lse, cudaStream_t stream) {
  if (R == 0) return cudaSuccess;
  if (dt == DType::f32)
    logprob_kernel<float><<<static_cast<unsigned>(R), 512, 0, stream>>>(static_cast<const float*>(logits), ld, V,
                                                                        rows, target, logprob, lse);
  else
    logprob_kernel<__nv_bfloat16><<<static_cast<unsigned>(R), 512, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(logits), ld, V, rows, target, logprob, lse);
  return cudaGetLastError();
}

}  // namespace hylora::cuda
