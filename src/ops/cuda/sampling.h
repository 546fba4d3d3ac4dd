// Token sampling, one row of logits per request, graph-safe (per-row parameters live in device memory).
// For row r (logits row rows ? rows[r] : r, V entries of type dt) with params[r]:
//   temperature ≤ 0: greedy, out = argmax (lowest index on ties).
//   otherwise l_i = logit_i / temperature (fp32), m = max l, p_i ∝ exp(l_i − m), and the kept set is
//     top-k  (0 < top_k < V): tokens whose l is ≥ the k-th largest l (ties at the threshold are all kept);
//     top-p  (0 < top_p < 1): among the top-k survivors, the highest-l tokens whose mass Σ exp(l − m) first reaches
//                             top_p × the survivors' mass (ties at the threshold kept; mass in 2⁻³² fixed point);
//     min-p  (min_p > 0):     tokens with p_i ≥ min_p · p_max, i.e. l_i ≥ m + log(min_p);
//   out = argmax over kept i of l_i + G_i with Gumbel noise G_i = −log(−log u_i), u_i = sample_uniform(seed, step, i):
//   an exact draw from softmax(l) restricted to the kept set, reproducible from (seed, step) and independent of the
//   launch shape. Callers advance `step` every decode step.
// Method (sampling.cu): one block of 1024 threads per row (few rows: split over blocks first, sampling_split.h);
// after the max, probe cuts at fixed gaps below it bound the kept set (counts for top-k, fixed-point mass for
// top-p), the candidates (usually tens to thousands of tokens) are compacted into shared memory and sorted, and the thresholds and the Gumbel-max come from that list; rows whose
// candidates do not fit (flat rows, top-k > 8192) take an exact radix selection with per-warp histograms. Same
// kept set as the definition in every case (proofs in sampling.cu). V ≤ 2^20 (cudaErrorInvalidValue above).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ops/cuda/dtype.h"

namespace hylora::cuda {

struct SamplingParams {
  float temperature = 1.0f;
  int32_t top_k = 0;     // ≤ 0 or ≥ V: off
  float top_p = 1.0f;    // ≥ 1: off
  float min_p = 0.0f;    // ≤ 0: off
  uint64_t seed = 0;
  uint64_t step = 0;
};

__host__ __device__ inline uint64_t sample_mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
// Uniform in (0, 1) with 24 random bits, a pure function of (seed, step, token).
__host__ __device__ inline float sample_uniform(uint64_t seed, uint64_t step, uint64_t token) {
  const uint64_t h = sample_mix64(seed ^ sample_mix64(step ^ sample_mix64(token)));
  return (static_cast<float>(h >> 40) + 0.5f) * (1.0f / 16777216.0f);
}

// Order-preserving 32-bit key of an fp32 value (for non-NaN a, b: a < b ⇔ key(a) < key(b); −0 sorts just below +0):
// sampling.cu decides every threshold in this key space, and the checks' host reference uses the same keys.
__host__ __device__ inline uint32_t sample_key(float f) {
#ifdef __CUDA_ARCH__
  const uint32_t b = __float_as_uint(f);
#else
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
#endif
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// Device workspace (bytes) that lets sample_tokens split each of R rows of V logits over several blocks; 0 when it
// would not (R rows fill the GPU with one block each, or rows are short). A few rows at decode batch 1-64 take
// ~0.1 ms in one block each; split, a few µs (sampling_split.h). About 80 KB a row.
size_t sample_tokens_workspace_bytes(int64_t R, int64_t V);

// logits [*, V] (ld) of type dt; rows int32 [R] or nullptr; params [R] (device); out int32 [R].
// logprob: fp32 [R] or nullptr: logprob[r] = the drawn token's log-probability under the raw row,
//   logits[row, out[r]] − log Σ_v exp(logits[row, v]) (not the temperature-scaled or truncated distribution).
// workspace: ≥ sample_tokens_workspace_bytes(R, V) bytes of device memory (16-byte aligned), or nullptr for one block
//   per row; the tokens are the same either way.
cudaError_t sample_tokens(DType dt, const void* logits, int64_t ld, int64_t V, const int32_t* rows, int64_t R,
                          const SamplingParams* params, int32_t* out, cudaStream_t stream, float* logprob = nullptr,
                          void* workspace = nullptr, size_t workspace_bytes = 0);

}  // namespace hylora::cuda
