// Device helpers of the token sampler (contract in sampling.h, method in sampling.cu): order-preserving keys, the
// fixed-point token mass, the Gumbel score, block reductions with a fixed tie rule, the probe-cut statistics, the
// radix fallback and the sorted-candidate-list finish. Shared by the one-block-per-row kernel (sampling.cu) and the
// split-row passes for small batches (sampling_split.cu), so both decide with the same arithmetic, bit for bit.
// Functions taking NT run with blocks of NT threads (kST unless stated).
#pragma once
#include <cmath>

#include "ops/cuda/common.cuh"
#include "ops/cuda/sampling.h"

namespace hylora::cuda::sampling_detail {
namespace {  // internal linkage: each CUDA file that includes this gets its own copy (kCutGap is __constant__)
using namespace detail;
constexpr int kST = 1024;
constexpr int kWarps = kST / 32;
constexpr int kCap = 8192;  // candidate list entries (power of two): 64 KiB of uint64
constexpr int kCuts = 8;
constexpr int kBins = 256;  // fallback radix digit of 8 bits
// dynamic shared memory: the candidate list, or (fallback) 2 per-warp histograms of 32-bit counters
constexpr size_t kSmem = kCap * sizeof(unsigned long long) > 2u * kWarps * kBins * sizeof(uint32_t)
                             ? kCap * sizeof(unsigned long long)
                             : 2u * kWarps * kBins * sizeof(uint32_t);
constexpr int64_t kMaxV = int64_t{1} << 20;  // the fallback's 32-bit mass halves stay exact
constexpr int kRounds = 3;  // probe rounds before the fallback
__constant__ float kCutGap[kCuts] = {0.0f, 1.0f, 2.0f, 4.0f, 8.0f, 13.0f, 20.0f, 32.0f};  // nats below the max

using u64 = unsigned long long;

// Gap below the max of probe j: the fixed table in round 0; later rounds split the band [glo, ghi) geometrically
// (glo, then glo + (ghi − glo)·2^(j−8)), finest next to glo.
__device__ __forceinline__ float probe_gap(int round, int j, float glo, float ghi) {
  return round == 0 ? kCutGap[j] : j == 0 ? glo : glo + (ghi - glo) * exp2f(static_cast<float>(j - kCuts));
}

__device__ __forceinline__ uint32_t fkey(float f) { return sample_key(f); }  // sampling.h
__device__ __forceinline__ float unkey(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}
// token mass exp(v − mx) in 2⁻³² fixed point (the same expression everywhere, so sums are bit-identical)
__device__ __forceinline__ u64 fmass(float v, float mx) {
  return static_cast<u64>(expf(v - mx) * 4294967296.0f);
}
__device__ __forceinline__ float gumbel_score(float v, const SamplingParams& P, int i) {
  const float u = sample_uniform(P.seed, P.step, static_cast<uint64_t>(i));
  return v - logf(-logf(u));
}
// running argmax: larger score, lowest index on ties; −inf / NaN scores never win (as a strict > from −inf would)
__device__ __forceinline__ void arg_update(float s, int i, float& bv, int& bi) {
  if (s > bv || (s == bv && i < bi && s > -INFINITY)) {
    bv = s;
    bi = i;
  }
}

// Calls f(i, x) once for every i in [0, V), x = logit i in fp32; 16-byte loads for the aligned body. Blocks of NT
// threads (NT ≥ 16 / sizeof(T)).
template <int NT = kST, typename T, typename F>
__device__ __forceinline__ void for_each_logit(const T* __restrict__ l, int V, F&& f) {
  constexpr int E = 16 / static_cast<int>(sizeof(T));
  const int mis = static_cast<int>((reinterpret_cast<uintptr_t>(l) & 15u) / sizeof(T));
  const int head = mis ? min(V, E - mis) : 0;
  const int nvec = (V - head) / E;
  const T* body = l + head;
  for (int g = threadIdx.x; g < nvec; g += NT) {
    float x[E];
    ld16(body + static_cast<int64_t>(g) * E, x);
#pragma unroll
    for (int e = 0; e < E; ++e) f(head + g * E + e, x[e]);
  }
  const int tail = head + nvec * E;  // fewer than E (< NT) left
  const int t = static_cast<int>(threadIdx.x);
  if (t < head) f(t, ld(l + t));
  if (tail + t < V) f(tail + t, ld(l + tail + t));
}

// block argmax of (v, i): largest v, lowest i on ties; every thread gets the winner's index (INT_MAX if none) and,
// with `best`, its value. sv, si: NT / 32 entries of shared memory.
template <int NT = kST>
__device__ int block_argmax(float v, int i, float* sv, int* si, float* best = nullptr) {
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
    for (int k = 1; k < NT / 32; ++k)
      if (sv[k] > bv || (sv[k] == bv && si[k] < bi)) {
        bv = sv[k];
        bi = si[k];
      }
    sv[0] = bv;
    si[0] = bi;
  }
  __syncthreads();
  const int r = si[0];
  if (best) *best = sv[0];
  __syncthreads();  // sv, si reusable
  return r;
}

__device__ __forceinline__ u64 warp_sum_u64(u64 v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block-wide scalars in shared memory.
struct Shared {
  float sv[kWarps];
  int si[kWarps];
  uint32_t kmax;       // max key of the row
  uint32_t fmaxkey;    // key of the fmaxf-max (NaN-free)
  uint32_t cnt[kCuts];  // tokens with key ≥ K_j
  u64 mass[kCuts];      // their mass
  u64 total;            // mass of the row (or of the top-k survivors)
  int n;                // candidates appended
  int first;            // first list position where the cumulative mass reaches the target
  u64 wsum[kWarps];     // scan scratch
  u64 bins[kBins];      // fallback: merged histogram
  uint32_t sel;
  u64 rem;
  uint32_t pair[2];     // split path: the row max's two keys
};

// Gumbel-max over the row's tokens with key ≥ thr; out[r] = winner or 0 if none.
template <typename T>
__device__ void draw_from_row(const T* l, int V, float temp, uint32_t thr, const SamplingParams& P, Shared& sh,
                              int32_t* out_r) {
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  for_each_logit(l, V, [&](int i, float x) {
    const float v = x / temp;
    if (fkey(v) >= thr) arg_update(gumbel_score(v, P, i), i, bv, bi);
  });
  const int oi = block_argmax(bv, bi, sh.sv, sh.si);
  if (threadIdx.x == 0) *out_r = oi == 0x7fffffff ? 0 : oi;
}

// Pass 2: per probe cut, the count (top-k) or, with kMass (top-p alone), the mass of the keys ≥ K_j and the row's
// total mass.
template <bool kMass, int NT = kST, typename T>
__device__ __forceinline__ void cut_stats(const T* l, int V, float temp, float mx, const uint32_t* K, Shared& sh) {
  uint32_t cnt[kCuts];
  u64 ms[kCuts];
  u64 z = 0;
#pragma unroll
  for (int j = 0; j < kCuts; ++j) {
    cnt[j] = 0;
    ms[j] = 0;
  }
  for_each_logit<NT>(l, V, [&](int, float x) {
    const float v = x / temp;
    const uint32_t k = fkey(v);
    if (kMass) {
      const u64 m = fmass(v, mx);
      z += m;
#pragma unroll
      for (int j = 0; j < kCuts; ++j)
        if (k >= K[j]) ms[j] += m;
    } else {
#pragma unroll
      for (int j = 0; j < kCuts; ++j) cnt[j] += k >= K[j] ? 1u : 0u;
    }
  });
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int j = 0; j < kCuts; ++j) {
    if (kMass) {
      const u64 m = warp_sum_u64(ms[j]);
      if (lane == 0) atomicAdd(&sh.mass[j], m);
    } else {
      const uint32_t c = __reduce_add_sync(0xffffffffu, cnt[j]);
      if (lane == 0) atomicAdd(&sh.cnt[j], c);
    }
  }
  if (kMass) {
    z = warp_sum_u64(z);
    if (lane == 0) atomicAdd(&sh.total, z);
  }
}

// ---- the per-row decisions shared by the one-block path and the split passes

// What a row's parameters ask for (sampling.h): greedy; a plain draw (temperature only); a draw over the min-p cut
// (needs the row max first); top-k and/or top-p (probe cuts, candidate list).
enum RowKind : int { kGreedy, kPlain, kMinP, kTopKP };
__device__ __forceinline__ RowKind row_kind(const SamplingParams& P, int V) {
  if (!(P.temperature > 0.0f)) return kGreedy;
  const bool use_k = P.top_k > 0 && P.top_k < V, use_p = P.top_p > 0.0f && P.top_p < 1.0f;
  if (use_k || use_p) return kTopKP;
  return P.min_p > 0.0f ? kMinP : kPlain;
}

// top-p's target mass: ceil(total · top_p), at least 1 (2⁻³² fixed point)
__device__ __forceinline__ u64 top_p_target(u64 total, float top_p) {
  const u64 t = static_cast<u64>(ceil(static_cast<double>(total) * static_cast<double>(top_p)));
  return t == 0 ? 1 : t;
}

// The probe that sets a round's candidate cut (sampling.cu, step 3): the first j whose count (top-k on) reaches k,
// or (top-p alone) whose mass reaches top-p's target of the row's total mass; −1 if none.
__device__ __forceinline__ int choose_probe(bool use_k, const SamplingParams& P, const uint32_t* cnt, const u64* mass,
                                            u64 total) {
  if (use_k) {
    for (int j = 0; j < kCuts; ++j)
      if (cnt[j] >= static_cast<uint32_t>(P.top_k)) return j;
    return -1;
  }
  const u64 target = top_p_target(total, P.top_p);
  for (int j = 0; j < kCuts; ++j)
    if (mass[j] >= target) return j;
  return -1;
}

// Appends (key << 32 | i_off + i) for the tokens i in [0, V) with key ≥ cut to L, positions taken from *n (an
// atomic counter, shared or global memory); stops once more than kCap have been counted (every warp sees that at its
// next step: warp-uniform), drops entries at positions ≥ kCap (*n still counts them). Blocks of NT threads.
template <int NT, typename T>
__device__ void append_candidates(const T* __restrict__ l, int V, int i_off, float temp, uint32_t cut, u64* L,
                                  int* n) {
  const int lane = threadIdx.x & 31;
  for (int i0 = 0; i0 < V; i0 += NT) {
    int seen = 0;
    if (lane == 0) seen = atomicAdd(n, 0);
    if (__shfl_sync(0xffffffffu, seen, 0) > kCap) break;  // warp-uniform
    const int i = i0 + static_cast<int>(threadIdx.x);
    uint32_t k = 0;
    bool take = false;
    if (i < V) {
      k = fkey(ld(l + i) / temp);
      take = k >= cut;
    }
    const unsigned bal = __ballot_sync(0xffffffffu, take);
    if (bal == 0) continue;
    int base = 0;
    if (lane == 0) base = atomicAdd(n, __popc(bal));
    base = __shfl_sync(0xffffffffu, base, 0);
    if (take) {
      const int pos = base + __popc(bal & ((1u << lane) - 1u));
      if (pos < kCap) L[pos] = (static_cast<u64>(k) << 32) | static_cast<uint32_t>(i_off + i);
    }
  }
}

// ---- split rows (sampling_split.cu): a few rows, each cut into S ≤ kMaxSplit chunks of its own block

constexpr int kSplitThreads = 256;  // threads of a split-pass block
constexpr int kMaxSplit = 128;      // chunks per row at most
enum SplitStatus : int { kSplitArg = 0, kSplitList = 1, kSplitFull = 2 };

// Device scratch of one row (sample_tokens_workspace_bytes): what the split passes leave for the finishing block.
struct SplitRow {
  float arg_v[kMaxSplit];         // per chunk: best score (greedy: the logit; draws: logit/temperature + Gumbel)
  int arg_i[kMaxSplit];           //            and its index (INT_MAX: none)
  uint32_t mxk[kMaxSplit];        // per chunk: key of the fmaxf max of logit/temperature
  uint32_t kmx[kMaxSplit];        //            and the max key
  float lse_m[kMaxSplit];         // per chunk: max raw logit
  float lse_s[kMaxSplit];         //            and Σ exp(raw − that max)  (the drawn token's log-probability)
  uint32_t cnt[kMaxSplit][kCuts];  // per chunk: round-0 probe counts (top-k on)
  u64 mass[kMaxSplit][kCuts];     //            or masses (top-p alone)
  u64 z[kMaxSplit];               //            and the chunk's total mass
  int n;                          // candidates appended to `list` (may exceed kCap: overflow)
  int status;                     // SplitStatus, set by the third pass for kTopKP rows
  u64 list[kCap];                 // candidates (key << 32 | index), unordered
};

// The row's max of logit/temperature (as the one-block path's pass 1 finds it) from the S chunk partials: every
// thread gets (mx, kmx). sm: 2 words of shared memory.
__device__ __forceinline__ void split_row_max(const SplitRow& W, int S, uint32_t* sm, float& mx, uint32_t& kmx) {
  if (threadIdx.x == 0) {
    sm[0] = 0;
    sm[1] = 0;
  }
  __syncthreads();
  for (int s = threadIdx.x; s < S; s += blockDim.x) {
    atomicMax(&sm[0], W.mxk[s]);
    atomicMax(&sm[1], W.kmx[s]);
  }
  __syncthreads();
  mx = unkey(sm[0]);
  kmx = sm[1];
  __syncthreads();  // sm reusable
}

// Fallback radix select over the whole row: the largest key t such that the count (kMass: the fixed-point mass) of
// tokens with key ≥ max(t, lo) reaches `want` (≥ 1), by 4 passes of 8 bits. hA / hB: per-warp histograms
// [kWarps][kBins] (kMass: low 16 and high bits of the mass; else counts in hA).
template <bool kMass, typename T>
__device__ uint32_t radix_select(const T* l, int V, float temp, float mx, uint32_t lo, u64 want, uint32_t* hA,
                                 uint32_t* hB, Shared& sh) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  uint32_t* a = hA + w * kBins;
  uint32_t* b = hB + w * kBins;
  uint32_t prefix = 0, mask = 0;
  u64 remaining = want;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int j = lane; j < kBins; j += 32) {
      a[j] = 0;
      if (kMass) b[j] = 0;
    }
    __syncwarp();
    for (int i0 = 0; i0 < V; i0 += kST) {  // the same trip count for every lane (full-warp match below)
      const int i = i0 + static_cast<int>(threadIdx.x);
      float v = 0.0f;
      uint32_t k = 0;
      bool in = false;
      if (i < V) {
        v = ld(l + i) / temp;
        k = fkey(v);
        in = k >= lo && (k & mask) == prefix;
      }
      if (!__any_sync(0xffffffffu, in)) continue;
      // lanes holding the same key (same value, same mass): one atomic from the lowest of them
      const unsigned g = __match_any_sync(0xffffffffu, in ? static_cast<u64>(k) : (u64{1} << 32));
      if (in && lane == __ffs(g) - 1) {
        const uint32_t bin = (k >> shift) & 255u, c = static_cast<uint32_t>(__popc(g));
        if (kMass) {
          const u64 m = fmass(v, mx) * c;
          atomicAdd(&a[bin], static_cast<uint32_t>(m & 0xffffu));
          atomicAdd(&b[bin], static_cast<uint32_t>(m >> 16));
        } else {
          atomicAdd(&a[bin], c);
        }
      }
    }
    __syncthreads();
    if (threadIdx.x < kBins) {
      u64 s = 0;
      for (int w2 = 0; w2 < kWarps; ++w2) {
        const int j = w2 * kBins + threadIdx.x;
        s += kMass ? (static_cast<u64>(hB[j]) << 16) + hA[j] : hA[j];
      }
      sh.bins[threadIdx.x] = s;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      u64 cum = 0;
      int bb = kBins - 1;
      for (; bb > 0; --bb) {
        if (cum + sh.bins[bb] >= remaining) break;
        cum += sh.bins[bb];
      }
      sh.sel = static_cast<uint32_t>(bb);
      sh.rem = remaining - cum;
    }
    __syncthreads();
    prefix |= sh.sel << shift;
    mask |= 255u << shift;
    remaining = sh.rem;
    __syncthreads();  // sh.sel / sh.rem / histograms reusable
  }
  return prefix;
}

// In-place bitonic sort of L[0, S) descending (S a power of two ≤ kCap).
__device__ void sort_desc(u64* L, int S) {
  for (int k = 2; k <= S; k <<= 1)
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = threadIdx.x; i < S; i += kST) {
        const int p = i ^ j;
        if (p > i) {
          const u64 x = L[i], y = L[p];
          const bool desc = (i & k) == 0;
          if (desc ? x < y : x > y) {
            L[i] = y;
            L[p] = x;
          }
        }
      }
      __syncthreads();
    }
}

__device__ __forceinline__ uint32_t key_at(const u64* L, int p) { return static_cast<uint32_t>(L[p] >> 32); }

// Thresholds from the sorted candidate list L[0, n) (descending), then the Gumbel-max over it.
__device__ void finish_from_list(u64* L, int n, float mx, bool use_k, bool use_p, uint32_t thr_min,
                                 const SamplingParams& P, Shared& sh, int32_t* out_r) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  uint32_t thr_k = 0;
  if (use_k && n >= P.top_k) thr_k = key_at(L, P.top_k - 1);
  uint32_t thr_p = 0;
  if (use_p) {
    int ns = 0;  // survivors of top-k: a prefix of the sorted list
    for (int p0 = 0; p0 < n; p0 += kST) {
      const int p = p0 + static_cast<int>(threadIdx.x);
      ns += __syncthreads_count(p < n && key_at(L, p) >= thr_k);
    }
    const int chunk = (ns + kST - 1) / kST, lo = min(ns, static_cast<int>(threadIdx.x) * chunk),
              hi = min(ns, lo + chunk);
    u64 local = 0;
    for (int p = lo; p < hi; ++p) local += fmass(unkey(key_at(L, p)), mx);
    // exclusive block scan of `local` (thread order = list order)
    u64 incl = local;
    for (int o = 1; o < 32; o <<= 1) {
      const u64 t = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += t;
    }
    if (lane == 31) sh.wsum[w] = incl;
    if (threadIdx.x == 0) sh.first = 0x7fffffff;
    __syncthreads();
    u64 before = 0, all = 0;
    for (int k = 0; k < kWarps; ++k) {
      if (k < w) before += sh.wsum[k];
      all += sh.wsum[k];
    }
    const u64 total = use_k ? all : sh.total;
    u64 target = static_cast<u64>(ceil(static_cast<double>(total) * static_cast<double>(P.top_p)));
    if (target == 0) target = 1;
    u64 cum = before + incl - local;
    for (int p = lo; p < hi; ++p) {
      cum += fmass(unkey(key_at(L, p)), mx);
      if (cum >= target) {
        atomicMin(&sh.first, p);
        break;
      }
    }
    __syncthreads();
    if (sh.first < ns) thr_p = key_at(L, sh.first);
  }
  const uint32_t thr = max(max(thr_k, thr_p), thr_min);
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  for (int p = threadIdx.x; p < n; p += kST) {
    const uint32_t k = key_at(L, p);
    if (k < thr) continue;
    const int i = static_cast<int>(static_cast<uint32_t>(L[p]));
    arg_update(gumbel_score(unkey(k), P, i), i, bv, bi);
  }
  const int oi = block_argmax(bv, bi, sh.sv, sh.si);
  if (threadIdx.x == 0) *out_r = oi == 0x7fffffff ? 0 : oi;
}
}  // namespace
}  // namespace hylora::cuda::sampling_detail
