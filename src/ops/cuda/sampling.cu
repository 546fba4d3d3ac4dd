// Sampling (math in sampling.h). One block of 512 threads per row. Thresholds are found in the space of order-
// preserving 32-bit keys of the fp32 scaled logits by 4 radix passes of 8 bits each (shared-memory histograms):
// top-k by counts, top-p by fixed-point mass (integer atomics, so the result does not depend on thread timing),
// min-p directly; the draw is a Gumbel-max over the kept tokens (block argmax, lowest index on ties).
#include <cmath>

#include "ops/cuda/common.cuh"
#include "ops/cuda/sampling.h"

namespace hylora::cuda {
using namespace detail;

namespace {
constexpr int kST = 512;

__device__ __forceinline__ uint32_t fkey(float f) {
  const uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// block argmax of (v, i): largest v, lowest i on ties; result broadcast through shared memory
__device__ void block_argmax(float v, int i, float* sv, int* si, float* outv, int* outi) {
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, i, o);
    if (ov > v || (ov == v && oi < i)) {
      v = ov;
      i = oi;
    }
  }
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) {
    sv[w] = v;
    si[w] = i;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float bv = sv[0];
    int bi = si[0];
    for (int k = 1; k < kST / 32; ++k)
      if (sv[k] > bv || (sv[k] == bv && si[k] < bi)) {
        bv = sv[k];
        bi = si[k];
      }
    sv[0] = bv;
    si[0] = bi;
  }
  __syncthreads();
  *outv = sv[0];
  *outi = si[0];
}

template <typename T>
__global__ void __launch_bounds__(kST) sample_kernel(const T* __restrict__ logits, int64_t ldl, int64_t V,
                                                     const int32_t* __restrict__ rows,
                                                     const SamplingParams* __restrict__ params, int32_t* out) {
  __shared__ float sv[32];
  __shared__ int si[32];
  __shared__ uint32_t hcnt[256];
  __shared__ unsigned long long hmass[256];
  __shared__ uint32_t s_sel;
  __shared__ unsigned long long s_rem;
  const int64_t r = blockIdx.x;
  const T* l = logits + (rows ? static_cast<int64_t>(rows[r]) : r) * ldl;
  const SamplingParams P = params[r];
  if (!(P.temperature > 0.0f)) {  // greedy
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for (int64_t i = threadIdx.x; i < V; i += kST) {
      const float v = ld(l + i);
      if (v > bv) {  // i increases per thread: strict > keeps the lowest index
        bv = v;
        bi = static_cast<int>(i);
      }
    }
    float ov;
    int oi;
    block_argmax(bv, bi, sv, si, &ov, &oi);
    if (threadIdx.x == 0) out[r] = oi == 0x7fffffff ? 0 : oi;
    return;
  }
  const float temp = P.temperature;
  auto lv = [&](int64_t i) { return ld(l + i) / temp; };
  // max
  float mx = -INFINITY;
  for (int64_t i = threadIdx.x; i < V; i += kST) mx = fmaxf(mx, lv(i));
  {
    float ov;
    int oi;
    block_argmax(mx, 0, sv, si, &ov, &oi);
    mx = ov;
  }
  uint32_t thr = 0;  // keep key >= thr
  // top-k
  if (P.top_k > 0 && P.top_k < V) {
    uint32_t prefix = 0, mask = 0;
    uint32_t remaining = static_cast<uint32_t>(P.top_k);
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int b = threadIdx.x; b < 256; b += kST) hcnt[b] = 0;
      __syncthreads();
      for (int64_t i = threadIdx.x; i < V; i += kST) {
        const uint32_t k = fkey(lv(i));
        if ((k & mask) == prefix) atomicAdd(&hcnt[(k >> shift) & 255u], 1u);
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        uint32_t cum = 0;
        int b = 255;
        for (; b > 0; --b) {
          if (cum + hcnt[b] >= remaining) break;
          cum += hcnt[b];
        }
        s_sel = static_cast<uint32_t>(b);
        s_rem = remaining - cum;
      }
      __syncthreads();
      prefix |= s_sel << shift;
      mask |= 255u << shift;
      remaining = static_cast<uint32_t>(s_rem);
      __syncthreads();
    }
    thr = prefix;
  }
  // top-p over the top-k survivors
  if (P.top_p > 0.0f && P.top_p < 1.0f) {
    if (threadIdx.x == 0) s_rem = 0;
    __syncthreads();
    unsigned long long part = 0;
    for (int64_t i = threadIdx.x; i < V; i += kST) {
      const float v = lv(i);
      if (fkey(v) >= thr) part += static_cast<unsigned long long>(expf(v - mx) * 4294967296.0f);
    }
    atomicAdd(&s_rem, part);
    __syncthreads();
    const unsigned long long total = s_rem;
    unsigned long long remaining =
        static_cast<unsigned long long>(ceil(static_cast<double>(total) * static_cast<double>(P.top_p)));
    if (remaining == 0) remaining = 1;
    __syncthreads();
    uint32_t prefix = 0, mask = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int b = threadIdx.x; b < 256; b += kST) hmass[b] = 0;
      __syncthreads();
      for (int64_t i = threadIdx.x; i < V; i += kST) {
        const float v = lv(i);
        const uint32_t k = fkey(v);
        if (k >= thr && (k & mask) == prefix)
          atomicAdd(&hmass[(k >> shift) & 255u], static_cast<unsigned long long>(expf(v - mx) * 4294967296.0f));
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        unsigned long long cum = 0;
        int b = 255;
        for (; b > 0; --b) {
          if (cum + hmass[b] >= remaining) break;
          cum += hmass[b];
        }
        s_sel = static_cast<uint32_t>(b);
        s_rem = remaining - cum;
      }
      __syncthreads();
      prefix |= s_sel << shift;
      mask |= 255u << shift;
      remaining = s_rem;
      __syncthreads();
    }
    thr = max(thr, prefix);
  }
  if (P.min_p > 0.0f) thr = max(thr, fkey(mx + logf(P.min_p)));
  // Gumbel-max draw over the kept tokens
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  for (int64_t i = threadIdx.x; i < V; i += kST) {
    const float v = lv(i);
    if (fkey(v) < thr) continue;
    const float u = sample_uniform(P.seed, P.step, static_cast<uint64_t>(i));
    const float key = v - logf(-logf(u));
    if (key > bv) {
      bv = key;
      bi = static_cast<int>(i);
    }
  }
  float ov;
  int oi;
  block_argmax(bv, bi, sv, si, &ov, &oi);
  if (threadIdx.x == 0) out[r] = oi == 0x7fffffff ? 0 : oi;
}
}  // namespace

cudaError_t sample_tokens(DType dt, const void* logits, int64_t ld, int64_t V, const int32_t* rows, int64_t R,
                          const SamplingParams* params, int32_t* out, cudaStream_t stream) {
  if (R == 0) return cudaSuccess;
  if (dt == DType::f32)
    sample_kernel<float><<<static_cast<unsigned>(R), kST, 0, stream>>>(static_cast<const float*>(logits), ld, V, rows,
                                                                       params, out);
  else
    sample_kernel<__nv_bfloat16><<<static_cast<unsigned>(R), kST, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(logits), ld, V, rows, params, out);
  return cudaGetLastError();
}

}  // namespace hylora::cuda
