// Sampling (math and contract in sampling.h). One block of kST = 1024 threads per row; the row stays in global memory
// (L2 after the first read) and every pass streams it with 16-byte loads where the row's alignment allows.
//
// Method. Everything is decided in the space of order-preserving 32-bit keys of the fp32 scaled logits (fkey), and
// every reduction is a max, an integer sum or an argmax with a fixed tie rule, so the result does not depend on the
// launch shape or on thread timing.
//  1. greedy: one argmax pass. Otherwise pass 1: the row max mx (and the max key kmx).
//  2. no top-k / top-p: the kept set is {key ≥ min-p cut} (or all): one Gumbel-max pass.
//  3. pass 2, probe cuts: for the keys K_j of mx − gap_j (gap 0, 1, 2, 4, 8, 13, 20, 32 nats) the number of tokens
//     with key ≥ K_j and (top-p without top-k) their 2⁻³² fixed-point mass and the row's total mass Z. They give a
//     candidate threshold T with kept ⊆ {key ≥ T}:
//       top-k on:  T_k = the largest K_j with count(key ≥ K_j) ≥ k, else 0. The k-th largest key is ≥ T_k (at least
//                  k keys are), so the top-k set (ties included) is ⊆ {key ≥ T_k}, and so is everything top-p keeps
//                  after it.
//       top-p alone: target = ceil(Z·top_p); T_p = the largest K_j with mass(key ≥ K_j) ≥ target, else 0. The top-p
//                  threshold is the largest key t with mass(key ≥ t) ≥ target (the cumulative mass from the top
//                  first reaches the target there), so it is ≥ T_p.
//       min-p:     its cut itself, except with top-k and top-p both on (top-p's total is over all top-k survivors,
//                  which must all be candidates then).
//     The final threshold max(top-k's, top-p's, min-p's) is ≥ T. If T ≥ kmx it is exactly max(T, min-p cut) (no
//     key exceeds kmx and each partial threshold is ≤ kmx or is the min-p cut): one Gumbel-max pass (this is the
//     all-equal-logits case, where every token is a candidate).
//  4. pass 3: the candidates {key ≥ T} are appended (warp ballots) to a list of (key << 32 | index) in shared memory;
//     if they fit (≤ kCap) the list is sorted (bitonic, descending) and the thresholds are read off it exactly: the
//     k-th key; the survivors' mass prefix sums (fixed point, recomputed from the key, which gives back the fp32
//     value bit for bit) against ceil(total·top_p), total = the survivors' sum (top-k on) or Z (top-p alone); ties
//     stay together because only the key at the crossing matters. When the list is short of k entries, or never
//     reaches the target, the true partial threshold is < T, so T came from the min-p cut, which then dominates
//     (the partial is taken as 0). The Gumbel-max runs over the list (kept ⊆ list).
//     If the list overflows and a probe (not the min-p cut) set T, passes 2-3 run again (kRounds in all) with the
//     probes spread geometrically over the gap band between the last insufficient probe and the chosen one (flat
//     rows: top-k's k-th key lies a tiny gap below the max). The proofs above hold for any probe keys.
//  5. fallback (still more than kCap candidates, e.g. flat rows where top-p keeps most of the vocabulary, or
//     top-k with k > kCap): exact radix
//     selection over the whole row, 4 passes of 8 bits per threshold, with per-warp histograms (no cross-warp
//     contention) and lanes of one warp that hold the same key aggregated by __match_any_sync (one atomic per
//     distinct key; identical keys are the contended case, e.g. ties); masses go into two 32-bit halves (native
//     shared atomics; exact for V ≤ 2^20, the limit sample_tokens checks).
#include <cmath>

#include "ops/cuda/common.cuh"
#include "ops/cuda/misc.h"
#include "ops/cuda/sampling.h"
#include "ops/cuda/sampling_device.cuh"
#include "ops/cuda/sampling_split.h"

namespace hylora::cuda {
using namespace detail;
using namespace sampling_detail;

namespace {

// The whole method over one row by one block of kST threads; thread 0 writes *out_r.
template <typename T>
__device__ void sample_row(const T* __restrict__ l, int V, const SamplingParams& P, Shared& sh, unsigned char* dsm,
                           int32_t* out_r) {
  const int lane = threadIdx.x & 31;
  if (!(P.temperature > 0.0f)) {  // greedy: first index of the max (NaN and −inf never win, as in the definition)
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for_each_logit(l, V, [&](int i, float x) { arg_update(x, i, bv, bi); });
    const int oi = block_argmax(bv, bi, sh.sv, sh.si);
    if (threadIdx.x == 0) *out_r = oi == 0x7fffffff ? 0 : oi;
    return;
  }
  const float temp = P.temperature;
  // pass 1: max (fmaxf: NaN ignored, as the definition's m) and max key
  if (threadIdx.x == 0) {
    sh.kmax = 0;
    sh.fmaxkey = 0;
  }
  __syncthreads();
  {
    float m = -INFINITY;
    uint32_t km = 0;
    for_each_logit(l, V, [&](int, float x) {
      const float v = x / temp;
      m = fmaxf(m, v);
      km = max(km, fkey(v));
    });
    const uint32_t a = __reduce_max_sync(0xffffffffu, fkey(m)), b = __reduce_max_sync(0xffffffffu, km);
    if (lane == 0) {
      atomicMax(&sh.fmaxkey, a);
      atomicMax(&sh.kmax, b);
    }
  }
  __syncthreads();
  const float mx = unkey(sh.fmaxkey);
  const uint32_t kmx = sh.kmax;
  const bool use_k = P.top_k > 0 && P.top_k < V, use_p = P.top_p > 0.0f && P.top_p < 1.0f;
  const uint32_t thr_min = P.min_p > 0.0f ? fkey(mx + logf(P.min_p)) : 0u;
  if (!use_k && !use_p) {
    draw_from_row(l, V, temp, thr_min, P, sh, out_r);
    return;
  }
  // passes 2 and 3, up to kRounds times: probe cuts -> candidate threshold `cut` -> candidate list
  u64* L = reinterpret_cast<u64*>(dsm);
  float glo = 0.0f, ghi = 0.0f;  // rounds after the first: the gap band between the last insufficient and the chosen cut
  for (int round = 0; round < kRounds; ++round) {
    __syncthreads();  // the previous round's readers of sh are done
    if (threadIdx.x < kCuts) {
      sh.cnt[threadIdx.x] = 0;
      sh.mass[threadIdx.x] = 0;
    }
    if (threadIdx.x == 0) {
      sh.total = 0;
      sh.n = 0;
    }
    __syncthreads();
    uint32_t K[kCuts];
#pragma unroll
    for (int j = 0; j < kCuts; ++j) K[j] = fkey(mx - probe_gap(round, j, glo, ghi));
    if (use_k)
      cut_stats<false>(l, V, temp, mx, K, sh);
    else
      cut_stats<true>(l, V, temp, mx, K, sh);
    __syncthreads();
    const int jsel = choose_probe(use_k, P, sh.cnt, sh.mass, sh.total);
    const uint32_t kj = jsel >= 0 ? fkey(mx - probe_gap(round, jsel, glo, ghi)) : 0u;  // = K[jsel], not indexed
    uint32_t cut = kj;
    if (!(use_k && use_p)) cut = max(cut, thr_min);
    if (cut >= kmx) {  // thresholds resolved (see the file comment)
      draw_from_row(l, V, temp, max(cut, thr_min), P, sh, out_r);
      return;
    }
    // the candidates into the list (stops early once they overflow it; skipped when top-k's count says they will)
    const bool overflows = use_k && jsel >= 0 && cut == kj && sh.cnt[jsel] > static_cast<uint32_t>(kCap);
    if (!overflows) append_candidates<kST>(l, V, 0, temp, cut, L, &sh.n);
    __syncthreads();
    const int n = overflows ? kCap + 1 : sh.n;
    if (n <= kCap) {
      int S = 1;
      while (S < n) S <<= 1;
      for (int p = n + static_cast<int>(threadIdx.x); p < S; p += kST) L[p] = 0;  // key 0 sorts last
      __syncthreads();
      sort_desc(L, S);
      finish_from_list(L, n, mx, use_k, use_p, thr_min, P, sh, out_r);
      return;
    }
    // overflow: zoom into the band between the last insufficient probe and the chosen one, unless the min-p cut
    // (which no probe can tighten) set the cut
    if (jsel < 1 || cut != kj || (use_k && P.top_k > kCap)) break;
    const float lo = probe_gap(round, jsel - 1, glo, ghi), hi = probe_gap(round, jsel, glo, ghi);
    glo = lo;
    ghi = hi;
  }
  // fallback: exact radix selection over the whole row (the list's memory becomes the per-warp histograms)
  uint32_t* hA = reinterpret_cast<uint32_t*>(dsm);
  uint32_t* hB = hA + kWarps * kBins;
  uint32_t thr_k = 0, thr_p = 0;
  if (use_k) thr_k = radix_select<false>(l, V, temp, mx, 0u, static_cast<u64>(P.top_k), hA, hB, sh);
  if (use_p) {
    if (use_k) {  // top-p's total: the top-k survivors' mass
      if (threadIdx.x == 0) sh.total = 0;
      __syncthreads();
      u64 part = 0;
      for_each_logit(l, V, [&](int, float x) {
        const float v = x / temp;
        if (fkey(v) >= thr_k) part += fmass(v, mx);
      });
      part = warp_sum_u64(part);
      if (lane == 0) atomicAdd(&sh.total, part);
      __syncthreads();
    }
    thr_p = radix_select<true>(l, V, temp, mx, thr_k, top_p_target(sh.total, P.top_p), hA, hB, sh);
  }
  draw_from_row(l, V, temp, max(max(thr_k, thr_p), thr_min), P, sh, out_r);
}

// The rows' sort list after the split passes (sampling_split.cu) left candidates, scores or the row's max: the
// finishing block of the split path. The row is read again only for kSplitFull rows (candidates overflowed).
template <typename T>
__device__ void finish_split_row(const T* __restrict__ l, int V, const SamplingParams& P, const SplitRow& W, int S,
                                 Shared& sh, unsigned char* dsm, int32_t* out_r) {
  const RowKind kind = row_kind(P, V);
  const int status = kind == kTopKP ? W.status : kSplitArg;
  if (status == kSplitArg) {  // the chunks' best scores: the same winner (value, then lowest index) as one pass
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    if (threadIdx.x < static_cast<unsigned>(S)) {
      bv = W.arg_v[threadIdx.x];
      bi = W.arg_i[threadIdx.x];
    }
    const int oi = block_argmax(bv, bi, sh.sv, sh.si);
    if (threadIdx.x == 0) *out_r = oi == 0x7fffffff ? 0 : oi;
    return;
  }
  const int n = W.n;
  if (status == kSplitList && n <= kCap) {  // the candidate list, as the one-block path builds it (order aside)
    float mx;
    uint32_t kmx;
    split_row_max(W, S, sh.pair, mx, kmx);
    if (threadIdx.x == 0) {
      u64 z = 0;
      for (int s = 0; s < S; ++s) z += W.z[s];
      sh.total = z;  // the row's mass (top-p alone)
    }
    const bool use_k = P.top_k > 0 && P.top_k < V, use_p = P.top_p > 0.0f && P.top_p < 1.0f;
    const uint32_t thr_min = P.min_p > 0.0f ? fkey(mx + logf(P.min_p)) : 0u;
    u64* L = reinterpret_cast<u64*>(dsm);
    int S2 = 1;
    while (S2 < n) S2 <<= 1;
    for (int p = threadIdx.x; p < S2; p += kST) L[p] = p < n ? W.list[p] : 0;  // key 0 sorts last
    __syncthreads();
    sort_desc(L, S2);
    finish_from_list(L, n, mx, use_k, use_p, thr_min, P, sh, out_r);
    return;
  }
  sample_row(l, V, P, sh, dsm, out_r);  // overflow: the whole method over the row
}

// One block per row. Without W: the whole method. With W (split path, sampling_split.cu ran first): the finish.
// With logprob: thread 0 also writes the drawn token's log-probability under the raw row, from the split passes'
// (max, Σ exp) partials (split path only; the one-block path leaves it to cuda::logprobs).
template <typename T>
__global__ void __launch_bounds__(kST, 1) sample_kernel(const T* __restrict__ logits, int64_t ldl, int V,
                                                        const int32_t* __restrict__ rows,
                                                        const SamplingParams* __restrict__ params, int32_t* out,
                                                        const SplitRow* __restrict__ W, int S, float* logprob) {
  extern __shared__ __align__(16) unsigned char dsm[];
  __shared__ Shared sh;
  const int64_t r = blockIdx.x;
  const T* l = logits + (rows ? static_cast<int64_t>(rows[r]) : r) * ldl;
  const SamplingParams P = params[r];
  if (!W) {
    sample_row(l, V, P, sh, dsm, out + r);
    return;
  }
  const SplitRow& w = W[r];
  finish_split_row(l, V, P, w, S, sh, dsm, out + r);
  if (logprob && threadIdx.x == 0) {
    float m = -INFINITY;
    for (int s = 0; s < S; ++s) m = fmaxf(m, w.lse_m[s]);
    float z = 0.0f;
    for (int s = 0; s < S; ++s)
      if (w.lse_m[s] > -INFINITY) z += w.lse_s[s] * expf(w.lse_m[s] - m);
    logprob[r] = ld(l + out[r]) - (m + logf(z));
  }
}

template <typename T>
cudaError_t launch(const void* logits, int64_t ld, int64_t V, const int32_t* rows, int64_t R,
                   const SamplingParams* params, int32_t* out, const SplitRow* W, int S, float* logprob,
                   cudaStream_t stream) {
  // raise the dynamic shared-memory limit once (not a stream operation; later calls, e.g. inside a graph capture,
  // skip it)
  static bool configured = false;
  if (!configured) {
    const cudaError_t e =
        cudaFuncSetAttribute(sample_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmem));
    if (e != cudaSuccess) return e;
    configured = true;
  }
  sample_kernel<T><<<static_cast<unsigned>(R), kST, kSmem, stream>>>(static_cast<const T*>(logits), ld,
                                                                      static_cast<int>(V), rows, params, out, W, S,
                                                                      logprob);
  return cudaGetLastError();
}
}  // namespace

size_t sample_tokens_workspace_bytes(int64_t R, int64_t V) {
  return split_count(R, V) > 1 ? static_cast<size_t>(R) * sizeof(SplitRow) : 0;
}

cudaError_t sample_tokens(DType dt, const void* logits, int64_t ld, int64_t V, const int32_t* rows, int64_t R,
                          const SamplingParams* params, int32_t* out, cudaStream_t stream, float* logprob,
                          void* workspace, size_t workspace_bytes) {
  if (R == 0) return cudaSuccess;
  if (V < 1 || V > kMaxV) return cudaErrorInvalidValue;
  const int S = workspace ? split_count(R, V) : 1;
  auto* W = static_cast<SplitRow*>(workspace);
  if (S > 1) {
    if (workspace_bytes < static_cast<size_t>(R) * sizeof(SplitRow) || reinterpret_cast<uintptr_t>(W) % 16 != 0)
      return cudaErrorInvalidValue;
    const cudaError_t e = split_passes(dt, logits, ld, V, rows, R, params, workspace, S, logprob != nullptr, stream);
    if (e != cudaSuccess) return e;
  } else {
    W = nullptr;
  }
  const cudaError_t e = dt == DType::f32
                            ? launch<float>(logits, ld, V, rows, R, params, out, W, S, logprob, stream)
                            : launch<__nv_bfloat16>(logits, ld, V, rows, R, params, out, W, S, logprob, stream);
  if (e != cudaSuccess || !logprob || W) return e;
  return logprobs(dt, logits, ld, V, rows, R, out, logprob, nullptr, stream);  // one-block path: its own pass
}

}  // namespace hylora::cuda
