// The sampler's split passes for few rows (what and why: sampling_split.h; contract: sampling.h). Grid (S, R):
// block (s, r) owns chunk s of row r, logits [s·C, min(V, (s+1)·C)) with C = chunk_len(V, S) (a multiple of 8, so a
// chunk starts as aligned as its row). Chunks past the row's end write neutral partials, so any S is valid.
#include <climits>

#include "ops/cuda/common.cuh"
#include "ops/cuda/sampling_device.cuh"
#include "ops/cuda/sampling_split.h"

namespace hylora::cuda::sampling_detail {
namespace {
constexpr int NT = kSplitThreads;
constexpr int kMinChunk = 2048;  // logits a chunk keeps at least: below that a block's fixed cost dominates
constexpr int kMaxSplitRows = 64;

__host__ __device__ __forceinline__ int chunk_len(int V, int S) { return ((V + S - 1) / S + 7) / 8 * 8; }

// Rows are found as in sample_kernel: logits row rows[r] (or r), chunk s.
struct ChunkView {
  int c0;   // index of the chunk's first logit in its row
  int len;  // logits in the chunk (0 past the end)
};
__device__ __forceinline__ ChunkView chunk_of(int V, int S) {
  const int C = chunk_len(V, S), c0 = static_cast<int>(blockIdx.x) * C;
  return {c0, max(0, min(C, V - c0))};
}

// The chunk's best (score, index) under `score` (−inf / NaN never win; lowest index on ties) into w.arg_*[s].
template <typename T, typename F>
__device__ void chunk_best(const T* __restrict__ lc, ChunkView c, F&& score, SplitRow& w, float* sv, int* si) {
  float bv = -INFINITY;
  int bi = INT_MAX;
  for_each_logit<NT>(lc, c.len, [&](int i, float x) { arg_update(score(c.c0 + i, x), c.c0 + i, bv, bi); });
  float best;
  const int oi = block_argmax<NT>(bv, bi, sv, si, &best);
  if (threadIdx.x == 0) {
    w.arg_v[blockIdx.x] = best;
    w.arg_i[blockIdx.x] = oi;
  }
}

// Pass 1: greedy and plain rows get their chunk's best score; the others the chunk's max of logit/temperature. With
// want_lse, every row also gets the chunk's raw (max, Σ exp(raw − max)).
template <typename T>
__global__ void __launch_bounds__(NT) split_pass1_kernel(const T* __restrict__ logits, int64_t ldl, int V,
                                                         const int32_t* __restrict__ rows,
                                                         const SamplingParams* __restrict__ params, SplitRow* W, int S,
                                                         bool want_lse) {
  __shared__ float sv[NT / 32], red[32];
  __shared__ int si[NT / 32];
  __shared__ uint32_t su[2];
  const int r = blockIdx.y, s = blockIdx.x;
  const T* l = logits + (rows ? static_cast<int64_t>(rows[r]) : r) * ldl;
  const SamplingParams P = params[r];
  SplitRow& w = W[r];
  const ChunkView c = chunk_of(V, S);
  const T* lc = l + c.c0;
  if (s == 0 && threadIdx.x == 0) {
    w.n = 0;
    w.status = kSplitFull;
  }
  if (want_lse) {  // the log-probability's normaliser, as cuda::logprobs computes it, per chunk
    float m = -INFINITY;
    for_each_logit<NT>(lc, c.len, [&](int, float x) { m = fmaxf(m, x); });
    m = warp_max(m);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = m;
    __syncthreads();
    m = -INFINITY;
    for (int k = 0; k < NT / 32; ++k) m = fmaxf(m, red[k]);
    float z = 0.0f;
    if (m > -INFINITY) for_each_logit<NT>(lc, c.len, [&](int, float x) { z += expf(x - m); });
    z = block_sum(z, red);
    if (threadIdx.x == 0) {
      w.lse_m[s] = m;
      w.lse_s[s] = z;
    }
  }
  const RowKind kind = row_kind(P, V);
  if (kind == kGreedy) {
    chunk_best(lc, c, [](int, float x) { return x; }, w, sv, si);
  } else if (kind == kPlain) {
    const float temp = P.temperature;
    chunk_best(lc, c, [&](int i, float x) { return gumbel_score(x / temp, P, i); }, w, sv, si);
  } else {  // the one-block path's pass 1, per chunk
    const float temp = P.temperature;
    if (threadIdx.x == 0) {
      su[0] = 0;
      su[1] = 0;
    }
    __syncthreads();
    float m = -INFINITY;
    uint32_t km = 0;
    for_each_logit<NT>(lc, c.len, [&](int, float x) {
      const float v = x / temp;
      m = fmaxf(m, v);
      km = max(km, fkey(v));
    });
    const uint32_t a = __reduce_max_sync(0xffffffffu, fkey(m)), b = __reduce_max_sync(0xffffffffu, km);
    if ((threadIdx.x & 31) == 0) {
      atomicMax(&su[0], a);
      atomicMax(&su[1], b);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      w.mxk[s] = c.len > 0 ? su[0] : 0u;
      w.kmx[s] = su[1];
    }
  }
}

// Pass 2: min-p rows → the chunk's best Gumbel score above the min-p cut; top-k / top-p rows → the chunk's round-0
// probe statistics (the one-block path's cut_stats, per chunk).
template <typename T>
__global__ void __launch_bounds__(NT) split_pass2_kernel(const T* __restrict__ logits, int64_t ldl, int V,
                                                         const int32_t* __restrict__ rows,
                                                         const SamplingParams* __restrict__ params, SplitRow* W,
                                                         int S) {
  __shared__ float sv[NT / 32];
  __shared__ int si[NT / 32];
  __shared__ uint32_t su[2];
  __shared__ Shared sh;
  const int r = blockIdx.y, s = blockIdx.x;
  const SamplingParams P = params[r];
  const RowKind kind = row_kind(P, V);
  if (kind != kMinP && kind != kTopKP) return;  // block-uniform
  const T* l = logits + (rows ? static_cast<int64_t>(rows[r]) : r) * ldl;
  SplitRow& w = W[r];
  const ChunkView c = chunk_of(V, S);
  const T* lc = l + c.c0;
  float mx;
  uint32_t kmx;
  split_row_max(w, S, su, mx, kmx);
  const float temp = P.temperature;
  if (kind == kMinP) {
    const uint32_t thr = fkey(mx + logf(P.min_p));
    chunk_best(
        lc, c,
        [&](int i, float x) {
          const float v = x / temp;
          return fkey(v) >= thr ? gumbel_score(v, P, i) : -INFINITY;
        },
        w, sv, si);
    return;
  }
  if (threadIdx.x < kCuts) {
    sh.cnt[threadIdx.x] = 0;
    sh.mass[threadIdx.x] = 0;
  }
  if (threadIdx.x == 0) sh.total = 0;
  __syncthreads();
  uint32_t K[kCuts];
#pragma unroll
  for (int j = 0; j < kCuts; ++j) K[j] = fkey(mx - probe_gap(0, j, 0.0f, 0.0f));
  if (P.top_k > 0 && P.top_k < V)
    cut_stats<false, NT>(lc, c.len, temp, mx, K, sh);
  else
    cut_stats<true, NT>(lc, c.len, temp, mx, K, sh);
  __syncthreads();
  if (threadIdx.x < kCuts) {
    w.cnt[s][threadIdx.x] = sh.cnt[threadIdx.x];
    w.mass[s][threadIdx.x] = sh.mass[threadIdx.x];
  }
  if (threadIdx.x == 0) w.z[s] = sh.total;
}

// Pass 3 (top-k / top-p rows): the round-0 cut from the summed statistics, exactly as sample_row decides it; then
// the chunk's Gumbel-max over the kept tokens (cut resolved), nothing (top-k's count says the list overflows), or
// the chunk's candidates appended to the row's list: gathered in shared memory first (dynamic: min(kCap, chunk)
// entries, which holds every candidate of a chunk shorter than kCap; a longer chunk's overflow past kCap is the row's
// overflow anyway), then one global atomic reserves the block's range (appending straight to the global list took
// one global atomic per warp and step on a single counter, ~120 blocks contending).
template <typename T>
__global__ void __launch_bounds__(NT) split_pass3_kernel(const T* __restrict__ logits, int64_t ldl, int V,
                                                         const int32_t* __restrict__ rows,
                                                         const SamplingParams* __restrict__ params, SplitRow* W,
                                                         int S) {
  __shared__ float sv[NT / 32];
  __shared__ int si[NT / 32];
  __shared__ uint32_t su[2];
  __shared__ uint32_t cnt[kCuts];
  __shared__ u64 mass[kCuts], total;
  __shared__ int n_local, base;
  extern __shared__ __align__(16) unsigned char dsm[];
  const int r = blockIdx.y, s = blockIdx.x;
  const SamplingParams P = params[r];
  if (row_kind(P, V) != kTopKP) return;  // block-uniform
  const T* l = logits + (rows ? static_cast<int64_t>(rows[r]) : r) * ldl;
  SplitRow& w = W[r];
  const ChunkView c = chunk_of(V, S);
  const T* lc = l + c.c0;
  float mx;
  uint32_t kmx;
  split_row_max(w, S, su, mx, kmx);
  if (threadIdx.x < kCuts) {  // integer sums: the same totals as one block's, whatever the order
    uint32_t cs = 0;
    u64 ms = 0;
    for (int q = 0; q < S; ++q) {
      cs += w.cnt[q][threadIdx.x];
      ms += w.mass[q][threadIdx.x];
    }
    cnt[threadIdx.x] = cs;
    mass[threadIdx.x] = ms;
  }
  if (threadIdx.x == kCuts) {
    u64 z = 0;
    for (int q = 0; q < S; ++q) z += w.z[q];
    total = z;
  }
  __syncthreads();
  const float temp = P.temperature;
  const bool use_k = P.top_k > 0 && P.top_k < V, use_p = P.top_p > 0.0f && P.top_p < 1.0f;
  const uint32_t thr_min = P.min_p > 0.0f ? fkey(mx + logf(P.min_p)) : 0u;
  const int jsel = choose_probe(use_k, P, cnt, mass, total);
  const uint32_t kj = jsel >= 0 ? fkey(mx - probe_gap(0, jsel, 0.0f, 0.0f)) : 0u;
  uint32_t cut = kj;
  if (!(use_k && use_p)) cut = max(cut, thr_min);
  if (cut >= kmx) {  // resolved: the draw over {key ≥ max(cut, min-p cut)}
    const uint32_t thr = max(cut, thr_min);
    chunk_best(
        lc, c,
        [&](int i, float x) {
          const float v = x / temp;
          return fkey(v) >= thr ? gumbel_score(v, P, i) : -INFINITY;
        },
        w, sv, si);
    if (s == 0 && threadIdx.x == 0) w.status = kSplitArg;
    return;
  }
  if (use_k && jsel >= 0 && cut == kj && cnt[jsel] > static_cast<uint32_t>(kCap)) return;  // stays kSplitFull
  u64* L = reinterpret_cast<u64*>(dsm);
  if (threadIdx.x == 0) n_local = 0;
  __syncthreads();
  append_candidates<NT>(lc, c.len, c.c0, temp, cut, L, &n_local);
  __syncthreads();
  // more than kCap here means more than kCap in the row: reserve past the end, so that the row overflows
  const int n = n_local <= kCap ? n_local : kCap + 1;
  if (threadIdx.x == 0) base = n > 0 ? atomicAdd(&w.n, n) : 0;
  __syncthreads();
  if (n <= kCap)
    for (int j = threadIdx.x; j < n && base + j < kCap; j += NT) w.list[base + j] = L[j];
  if (s == 0 && threadIdx.x == 0) w.status = kSplitList;
}

constexpr size_t kPass3Smem = kCap * sizeof(u64);  // a chunk's candidates, at most (the launch asks for what its chunk needs)

template <typename T>
cudaError_t launch_passes(const void* logits, int64_t ld, int V, const int32_t* rows, int64_t R,
                          const SamplingParams* params, SplitRow* W, int S, bool want_lse, cudaStream_t stream) {
  static bool configured = false;  // the 64 KiB of dynamic shared memory, allowed once (not a stream operation)
  if (!configured) {
    const cudaError_t e = cudaFuncSetAttribute(split_pass3_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(kPass3Smem));
    if (e != cudaSuccess) return e;
    configured = true;
  }
  const dim3 grid(static_cast<unsigned>(S), static_cast<unsigned>(R));
  const T* lg = static_cast<const T*>(logits);
  split_pass1_kernel<T><<<grid, NT, 0, stream>>>(lg, ld, V, rows, params, W, S, want_lse);
  split_pass2_kernel<T><<<grid, NT, 0, stream>>>(lg, ld, V, rows, params, W, S);
  // min(kCap, C) entries: 64 KiB a block would keep 3 blocks an SM (the wide splits of batch 1-8 need more)
  const size_t smem3 = static_cast<size_t>(min(kCap, chunk_len(V, S))) * sizeof(u64);
  split_pass3_kernel<T><<<grid, NT, smem3, stream>>>(lg, ld, V, rows, params, W, S);
  return cudaGetLastError();
}
}  // namespace

int split_count(int64_t R, int64_t V) {
  if (R < 1 || R > kMaxSplitRows || V < 2 * kMinChunk) return 1;
  static int sms = 0;  // the device's SM count, asked once
  if (sms == 0) {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
      n = 132;
    sms = n > 0 ? n : 132;
  }
  // enough 256-thread blocks to fill every SM (8 resident each) about once: at batch 64, 2 waves of 1-block SMs
  // (S = 4) left pass 1 latency-bound (196 µs for 64 × 248k with log-probabilities, H200, ncu)
  int64_t S = (8 * static_cast<int64_t>(sms) + R - 1) / R;
  S = S < V / kMinChunk ? S : V / kMinChunk;
  S = S < kMaxSplit ? S : kMaxSplit;
  return S >= 2 ? static_cast<int>(S) : 1;
}

cudaError_t split_passes(DType dt, const void* logits, int64_t ld, int64_t V, const int32_t* rows, int64_t R,
                         const SamplingParams* params, void* workspace, int S, bool want_lse, cudaStream_t stream) {
  if (S < 2 || S > kMaxSplit) return cudaErrorInvalidValue;
  auto* W = static_cast<SplitRow*>(workspace);
  const int v = static_cast<int>(V);
  return dt == DType::f32 ? launch_passes<float>(logits, ld, v, rows, R, params, W, S, want_lse, stream)
                          : launch_passes<__nv_bfloat16>(logits, ld, v, rows, R, params, W, S, want_lse, stream);
}

}  // namespace hylora::cuda::sampling_detail
