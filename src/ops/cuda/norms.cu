// RMSNorm variants (math in norms.h): y = v · rsqrt(Σv²/d + eps) · w', one block per normalised vector (row, head or
// group); threads stride over the vector, a warp-shuffle + shared-memory reduction gives Σv², fp32 throughout.
#include "ops/cuda/common.cuh"
#include "ops/cuda/norms.h"

namespace hylora::cuda {
using namespace detail;

namespace {

template <typename T>
__global__ void rms_norm_kernel(const T* x, int64_t ldx, const T* __restrict__ w, T* y, int64_t ldy,
                                int64_t heads, int64_t d, float eps, bool one_plus) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x / heads, h = blockIdx.x % heads;
  const T* xr = x + r * ldx + h * d;
  T* yr = y + r * ldy + h * d;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const float v = ld(xr + i);
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss, scratch) / static_cast<float>(d) + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const float wv = ld(w + i);
    st(yr + i, ld(xr + i) * inv * (one_plus ? 1.0f + wv : wv));
  }
}

template <typename T>
__global__ void add_rms_norm_kernel(T* x, int64_t ldx, const T* __restrict__ res, int64_t ldr,
                                    const T* __restrict__ w, T* y, int64_t ldy, int64_t d, float eps, bool one_plus) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  T* xr = x + r * ldx;
  const T* rr = res + r * ldr;
  T* yr = y + r * ldy;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const float v = round_to(ld(xr + i) + ld(rr + i), xr);
    st(xr + i, v);
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss, scratch) / static_cast<float>(d) + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {  // each thread re-reads only what it wrote itself
    const float wv = ld(w + i);
    st(yr + i, ld(xr + i) * inv * (one_plus ? 1.0f + wv : wv));
  }
}

template <typename T>
__global__ void rms_norm_gated_kernel(const T* __restrict__ y, int64_t ldy, const T* __restrict__ z, int64_t ldz,
                                      const T* __restrict__ w, T* out, int64_t ldo, int64_t d, int64_t group,
                                      float eps, bool before) {
  __shared__ float scratch[32];
  const int64_t ngroups = d / group;
  const int64_t r = blockIdx.x / ngroups, g0 = (blockIdx.x % ngroups) * group;
  const T* yr = y + r * ldy + g0;
  const T* zr = z + r * ldz + g0;
  T* orow = out + r * ldo + g0;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < group; i += blockDim.x) {
    float u = ld(yr + i);
    if (before) u *= silu_exact(ld(zr + i));
    ss += u * u;
  }
  const float inv = rsqrtf(block_sum(ss, scratch) / static_cast<float>(group) + eps);
  for (int64_t i = threadIdx.x; i < group; i += blockDim.x) {
    const float zv = silu_exact(ld(zr + i));
    float u = ld(yr + i);
    if (before) u *= zv;
    float v = ld(w + g0 + i) * (u * inv);
    if (!before) v *= zv;
    st(orow + i, v);
  }
}

int threads_for(int64_t d) { return d >= 2048 ? 512 : d >= 512 ? 256 : d >= 128 ? 128 : 32; }

}  // namespace

cudaError_t rms_norm(DType dt, const void* x, int64_t ldx, const void* w, void* y, int64_t ldy, int64_t rows,
                     int64_t heads, int64_t d, float eps, bool one_plus, cudaStream_t stream) {
  if (rows == 0 || heads == 0 || d == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(rows * heads));
  const int nt = threads_for(d);
  if (dt == DType::f32)
    rms_norm_kernel<float><<<grid, nt, 0, stream>>>(static_cast<const float*>(x), ldx, static_cast<const float*>(w),
                                                    static_cast<float*>(y), ldy, heads, d, eps, one_plus);
  else
    rms_norm_kernel<__nv_bfloat16><<<grid, nt, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(x), ldx, static_cast<const __nv_bfloat16*>(w),
        static_cast<__nv_bfloat16*>(y), ldy, heads, d, eps, one_plus);
  return cudaGetLastError();
}

cudaError_t add_rms_norm(DType dt, void* x, int64_t ldx, const void* residual, int64_t ldr, const void* w, void* y,
                         int64_t ldy, int64_t rows, int64_t d, float eps, bool one_plus, cudaStream_t stream) {
  if (rows == 0 || d == 0) return cudaSuccess;
  const int nt = threads_for(d);
  if (dt == DType::f32)
    add_rms_norm_kernel<float><<<static_cast<unsigned>(rows), nt, 0, stream>>>(
        static_cast<float*>(x), ldx, static_cast<const float*>(residual), ldr, static_cast<const float*>(w),
        static_cast<float*>(y), ldy, d, eps, one_plus);
  else
    add_rms_norm_kernel<__nv_bfloat16><<<static_cast<unsigned>(rows), nt, 0, stream>>>(
        static_cast<__nv_bfloat16*>(x), ldx, static_cast<const __nv_bfloat16*>(residual), ldr,
        static_cast<const __nv_bfloat16*>(w), static_cast<__nv_bfloat16*>(y), ldy, d, eps, one_plus);
  return cudaGetLastError();
}

cudaError_t rms_norm_gated(DType dt, const void* y, int64_t ldy, const void* z, int64_t ldz, const void* w, void* out,
                           int64_t ldo, int64_t rows, int64_t d, int64_t group, float eps, bool gate_before_norm,
                           cudaStream_t stream) {
  if (rows == 0 || d == 0) return cudaSuccess;
  if (group <= 0 || d % group != 0) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(rows * (d / group)));
  const int nt = threads_for(group);
  if (dt == DType::f32)
    rms_norm_gated_kernel<float><<<grid, nt, 0, stream>>>(
        static_cast<const float*>(y), ldy, static_cast<const float*>(z), ldz, static_cast<const float*>(w),
        static_cast<float*>(out), ldo, d, group, eps, gate_before_norm);
  else
    rms_norm_gated_kernel<__nv_bfloat16><<<grid, nt, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(y), ldy, static_cast<const __nv_bfloat16*>(z), ldz,
        static_cast<const __nv_bfloat16*>(w), static_cast<__nv_bfloat16*>(out), ldo, d, group, eps,
        gate_before_norm);
  return cudaGetLastError();
}

}  // namespace hylora::cuda
