// The per-rank index kernels of a tensor-parallel step (tensor_parallel.h). Grid-stride loops: these run once per
// step over T ids or T·k pairs (and a few rows of a shrink), far below any GEMM of the step.
#include "ops/cuda/tensor_parallel.h"

namespace hylora::cuda::tp {

namespace {
constexpr int kThreads = 256;
int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 1 ? 1 : (b > 65535 ? 65535 : b));
}

__global__ void localize_vocab_k(const int32_t* ids, int64_t T, int64_t begin, int64_t size, int32_t* local,
                                 int32_t* elsewhere) {
  for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < T; t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t l = ids[t] - begin;
    const bool mine = l >= 0 && l < size;
    local[t] = mine ? static_cast<int32_t>(l) : 0;
    elsewhere[t] = mine ? 0 : 1;
  }
}

__global__ void zero_rows_k(const int32_t* mask, const int32_t* perm, float* t, int64_t n, int64_t w, int64_t ld) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n * w; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / w, c = i % w;
    if (mask[perm ? perm[r] : r]) t[r * ld + c] = 0.0f;
  }
}

__global__ void localize_routing_k(const int32_t* ids, const float* w, int64_t P, int64_t e0, int64_t n,
                                   int32_t* local_ids, float* local_w) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < P; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t e = ids[i] - e0;
    const bool mine = e >= 0 && e < n;
    local_ids[i] = mine ? static_cast<int32_t>(e) : 0;
    local_w[i] = mine ? w[i] : 0.0f;
  }
}
}  // namespace

cudaError_t localize_vocab_ids(const int32_t* ids, int64_t T, int64_t begin, int64_t size, int32_t* local,
                               int32_t* elsewhere, cudaStream_t st) {
  if (T == 0) return cudaSuccess;
  localize_vocab_k<<<blocks_for(T), kThreads, 0, st>>>(ids, T, begin, size, local, elsewhere);
  return cudaGetLastError();
}

cudaError_t zero_masked_rows(const int32_t* mask, const int32_t* perm, float* t, int64_t n, int64_t w, int64_t ld,
                             cudaStream_t st) {
  if (n == 0 || w == 0) return cudaSuccess;
  zero_rows_k<<<blocks_for(n * w), kThreads, 0, st>>>(mask, perm, t, n, w, ld);
  return cudaGetLastError();
}

cudaError_t localize_expert_routing(const int32_t* ids, const float* w, int64_t P, int64_t e0, int64_t n,
                                    int32_t* local_ids, float* local_w, cudaStream_t st) {
  if (P == 0) return cudaSuccess;
  localize_routing_k<<<blocks_for(P), kThreads, 0, st>>>(ids, w, P, e0, n, local_ids, local_w);
  return cudaGetLastError();
}

}  // namespace hylora::cuda::tp
