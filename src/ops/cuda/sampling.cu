// Sampling (math and contract in sampling.h). One block of kST = 1024 threads per row; the row stays in global memory
// (L2 after the first read) and every pass streams it with 16-byte loads where the row's alignment allows.
//
// Method. Everything is decided in the space of order-preserving 32-bit keys of the fp32 scaled logits (sample_key,
// sampling.h), and every reduction is a max, an integer sum or an argmax with a fixed tie rule, so the result does not
// depend on the launch shape or on thread timing.
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
#include "ops/cuda/sampling.h"

namespace hylora::cuda {
using namespace detail;

namespace {
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

// Calls f(i, x) once for every i in [0, V), x = logit i in fp32; 16-byte loads for the aligned body.
template <typename T, typename F>
__device__ __forceinline__ void for_each_logit(const T* __restrict__ l, int V, F&& f) {
  constexpr int E = 16 / static_cast<int>(sizeof(T));
  const int mis = static_cast<int>((reinterpret_cast<uintptr_t>(l) & 15u) / sizeof(T));
  const int head = mis ? min(V, E - mis) : 0;
  const int nvec = (V - head) / E;
  const T* body = l + head;
  for (int g = threadIdx.x; g < nvec; g += kST) {
    float x[E];
    ld16(body + static_cast<int64_t>(g) * E, x);
#pragma unroll
    for (int e = 0; e < E; ++e) f(head + g * E + e, x[e]);
  }
  const int tail = head + nvec * E;  // fewer than E (< kST) left
  const int t = static_cast<int>(threadIdx.x);
  if (t < head) f(t, ld(l + t));
  if (tail + t < V) f(tail + t, ld(l + tail + t));
}

// block argmax of (v, i): largest v, lowest i on ties; every thread gets the winner's index (INT_MAX if none)
__device__ int block_argmax(float v, int i, float* sv, int* si) {
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
    for (int k = 1; k < kWarps; ++k)
      if (sv[k] > bv || (sv[k] == bv && si[k] < bi)) {
        bv = sv[k];
        bi = si[k];
      }
    si[0] = bi;
  }
  __syncthreads();
  const int r = si[0];
  __syncthreads();  // si reusable
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
};

// Gumbel-max over the row's tokens with key ≥ thr; out[r] = winner or 0 if none.
template <typename T>
__device__ void draw_from_row(const T* l, int V, float temp, uint32_t thr, const SamplingParams& P, Shared& sh,
                              int32_t* out_r) {
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  for_each_logit(l, V, [&](int i, float x) {
    const float v = x / temp;
    if (sample_key(v) >= thr) arg_update(gumbel_score(v, P, i), i, bv, bi);
  });
  const int oi = block_argmax(bv, bi, sh.sv, sh.si);
  if (threadIdx.x == 0) *out_r = oi == 0x7fffffff ? 0 : oi;
}

// Pass 2: per probe cut, the count (top-k) or, with kMass (top-p alone), the mass of the keys ≥ K_j and the row's
// total mass.
template <bool kMass, typename T>
__device__ __forceinline__ void cut_stats(const T* l, int V, float temp, float mx, const uint32_t* K, Shared& sh) {
  uint32_t cnt[kCuts];
  u64 ms[kCuts];
  u64 z = 0;
#pragma unroll
  for (int j = 0; j < kCuts; ++j) {
    cnt[j] = 0;
    ms[j] = 0;
  }
  for_each_logit(l, V, [&](int, float x) {
    const float v = x / temp;
    const uint32_t k = sample_key(v);
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
        k = sample_key(v);
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

template <typename T>
__global__ void __launch_bounds__(kST, 1) sample_kernel(const T* __restrict__ logits, int64_t ldl, int V,
                                                        const int32_t* __restrict__ rows,
                                                        const SamplingParams* __restrict__ params, int32_t* out) {
  extern __shared__ __align__(16) unsigned char dsm[];
  __shared__ Shared sh;
  const int64_t r = blockIdx.x;
  const T* l = logits + (rows ? static_cast<int64_t>(rows[r]) : r) * ldl;
  const SamplingParams P = params[r];
  const int lane = threadIdx.x & 31;
  if (!(P.temperature > 0.0f)) {  // greedy: first index of the max (NaN and −inf never win, as in the definition)
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for_each_logit(l, V, [&](int i, float x) { arg_update(x, i, bv, bi); });
    const int oi = block_argmax(bv, bi, sh.sv, sh.si);
    if (threadIdx.x == 0) out[r] = oi == 0x7fffffff ? 0 : oi;
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
      km = max(km, sample_key(v));
    });
    const uint32_t a = __reduce_max_sync(0xffffffffu, sample_key(m)), b = __reduce_max_sync(0xffffffffu, km);
    if (lane == 0) {
      atomicMax(&sh.fmaxkey, a);
      atomicMax(&sh.kmax, b);
    }
  }
  __syncthreads();
  const float mx = unkey(sh.fmaxkey);
  const uint32_t kmx = sh.kmax;
  const bool use_k = P.top_k > 0 && P.top_k < V, use_p = P.top_p > 0.0f && P.top_p < 1.0f;
  const uint32_t thr_min = P.min_p > 0.0f ? sample_key(mx + logf(P.min_p)) : 0u;
  if (!use_k && !use_p) {
    draw_from_row(l, V, temp, thr_min, P, sh, out + r);
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
    for (int j = 0; j < kCuts; ++j) K[j] = sample_key(mx - probe_gap(round, j, glo, ghi));
    if (use_k)
      cut_stats<false>(l, V, temp, mx, K, sh);
    else
      cut_stats<true>(l, V, temp, mx, K, sh);
    __syncthreads();
    uint32_t cut;
    int jsel = -1;
    if (use_k) {
      for (int j = 0; j < kCuts && jsel < 0; ++j)
        if (sh.cnt[j] >= static_cast<uint32_t>(P.top_k)) jsel = j;
    } else {
      u64 target = static_cast<u64>(ceil(static_cast<double>(sh.total) * static_cast<double>(P.top_p)));
      if (target == 0) target = 1;
      for (int j = 0; j < kCuts && jsel < 0; ++j)
        if (sh.mass[j] >= target) jsel = j;
    }
    const uint32_t kj = jsel >= 0 ? sample_key(mx - probe_gap(round, jsel, glo, ghi)) : 0u;  // = K[jsel], not indexed
    cut = kj;
    if (!(use_k && use_p)) cut = max(cut, thr_min);
    if (cut >= kmx) {  // thresholds resolved (see the file comment)
      draw_from_row(l, V, temp, max(cut, thr_min), P, sh, out + r);
      return;
    }
    // the candidates into the list (stops early once they overflow it; skipped when top-k's count says they will)
    const bool overflows = use_k && jsel >= 0 && cut == kj && sh.cnt[jsel] > static_cast<uint32_t>(kCap);
    for (int i0 = 0; i0 < V && !overflows; i0 += kST) {
      int seen = 0;
      if (lane == 0) seen = atomicAdd(&sh.n, 0);
      if (__shfl_sync(0xffffffffu, seen, 0) > kCap) break;  // warp-uniform
      const int i = i0 + static_cast<int>(threadIdx.x);
      uint32_t k = 0;
      bool take = false;
      if (i < V) {
        k = sample_key(ld(l + i) / temp);
        take = k >= cut;
      }
      const unsigned bal = __ballot_sync(0xffffffffu, take);
      if (bal == 0) continue;
      int base = 0;
      if (lane == 0) base = atomicAdd(&sh.n, __popc(bal));
      base = __shfl_sync(0xffffffffu, base, 0);
      if (take) {
        const int pos = base + __popc(bal & ((1u << lane) - 1u));
        if (pos < kCap) L[pos] = (static_cast<u64>(k) << 32) | static_cast<uint32_t>(i);
      }
    }
    __syncthreads();
    const int n = overflows ? kCap + 1 : sh.n;
    if (n <= kCap) {
      int S = 1;
      while (S < n) S <<= 1;
      for (int p = n + static_cast<int>(threadIdx.x); p < S; p += kST) L[p] = 0;  // key 0 sorts last
      __syncthreads();
      sort_desc(L, S);
      finish_from_list(L, n, mx, use_k, use_p, thr_min, P, sh, out + r);
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
        if (sample_key(v) >= thr_k) part += fmass(v, mx);
      });
      part = warp_sum_u64(part);
      if (lane == 0) atomicAdd(&sh.total, part);
      __syncthreads();
    }
    u64 target = static_cast<u64>(ceil(static_cast<double>(sh.total) * static_cast<double>(P.top_p)));
    if (target == 0) target = 1;
    thr_p = radix_select<true>(l, V, temp, mx, thr_k, target, hA, hB, sh);
  }
  draw_from_row(l, V, temp, max(max(thr_k, thr_p), thr_min), P, sh, out + r);
}

template <typename T>
cudaError_t launch(const void* logits, int64_t ld, int64_t V, const int32_t* rows, int64_t R,
                   const SamplingParams* params, int32_t* out, cudaStream_t stream) {
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
                                                                      static_cast<int>(V), rows, params, out);
  return cudaGetLastError();
}
}  // namespace

cudaError_t sample_tokens(DType dt, const void* logits, int64_t ld, int64_t V, const int32_t* rows, int64_t R,
                          const SamplingParams* params, int32_t* out, cudaStream_t stream) {
  if (R == 0) return cudaSuccess;
  if (V < 1 || V > kMaxV) return cudaErrorInvalidValue;
  return dt == DType::f32 ? launch<float>(logits, ld, V, rows, R, params, out, stream)
                          : launch<__nv_bfloat16>(logits, ld, V, rows, R, params, out, stream);
}

}  // namespace hylora::cuda
