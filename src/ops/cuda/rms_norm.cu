// y = x * rsqrt(mean(x²) + eps) * w'   with w' = w (plain) or 1 + w (Qwen3.5's zero-centred norm), per row.
// One block of 256 threads per row: each thread accumulates a strided partial sum of squares, a shared-memory
// tree reduction gives the row's mean, then every thread scales its strided elements.
#include "ops/cuda/rms_norm.cuh"

namespace hylora::cuda {

namespace {
constexpr int kThreads = 256;

__global__ void rms_norm_kernel(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y,
                                int64_t d, float eps, bool one_plus) {
  __shared__ float partial[kThreads];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * d;
  float* yr = y + row * d;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += kThreads) ss += xr[i] * xr[i];
  partial[threadIdx.x] = ss;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  const float r = rsqrtf(partial[0] / static_cast<float>(d) + eps);
  for (int64_t i = threadIdx.x; i < d; i += kThreads) yr[i] = xr[i] * r * (one_plus ? 1.0f + w[i] : w[i]);
}
}  // namespace

cudaError_t rms_norm_f32(const float* x, const float* w, float* y, int64_t rows, int64_t d, float eps, bool one_plus,
                         cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  rms_norm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, w, y, d, eps, one_plus);
  return cudaGetLastError();
}

}  // namespace hylora::cuda
