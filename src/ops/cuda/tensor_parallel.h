// The per-rank index kernels of a tensor-parallel step (ops/tensor_parallel.h): device pointers, a cudaStream_t.
#pragma once
#include <cuda_runtime.h>
#include <cstdint>

namespace hylora::cuda::tp {

// local[t] = ids[t] − begin when begin ≤ ids[t] < begin + size, else 0; elsewhere[t] = !(that). T ids.
cudaError_t localize_vocab_ids(const int32_t* ids, int64_t T, int64_t begin, int64_t size, int32_t* local,
                               int32_t* elsewhere, cudaStream_t st);
// Row i of t [n, w] (ld) is zeroed where mask[perm ? perm[i] : i] != 0.
cudaError_t zero_masked_rows(const int32_t* mask, const int32_t* perm, float* t, int64_t n, int64_t w, int64_t ld,
                             cudaStream_t st);
// P (token, expert) pairs: local_ids[i] = ids[i] − e0 and local_w[i] = w[i] when 0 ≤ ids[i] − e0 < n, else 0 and 0.
cudaError_t localize_expert_routing(const int32_t* ids, const float* w, int64_t P, int64_t e0, int64_t n,
                                    int32_t* local_ids, float* local_w, cudaStream_t st);

}  // namespace hylora::cuda::tp
