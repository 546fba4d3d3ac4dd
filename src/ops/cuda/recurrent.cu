// Recurrent ops (math in recurrent.h).
// gated_delta_rule, Dk ≤ 128 and ≤ 4 rows per sequence (decode): one warp per (sequence, value head, 32 Dv columns),
//   the whole column in registers (gdn_warp_kernel). Otherwise: block = (sequence, value head, 32 Dv columns), 8 warps; lane j owns column j of the tile, warp w
//   owns rows i ≡ w (mod 8) of S (≤ 32 rows per thread, in registers). Tokens are staged 16 at a time (q, k with their
//   l2 norms applied, the v tile, decay and β); per token two cross-warp reductions through shared memory give
//   u_j = Σ_i S_ij k̂_i and o_j = Σ_i S_ij q̂_i.
// ssm_scan: block = (sequence, head, 8 channels of hd), warp w owns channel p0 + w, lane l owns states
//   n ≡ l (mod 32) (≤ 8 per thread; state rows are read and written coalesced). Tokens staged 16 at a time (x tile,
//   Δ, decay, B, C) behind one barrier; per token y_p = Σ_n S_pn C_n is a warp-shuffle sum (no barrier).
// causal_conv1d: one thread per (row, channel) reads its K inputs from x or, before the sequence start, from the
//   slot's state; a second kernel (one thread per (sequence, channel)) writes the new state after all reads.
#include "ops/cuda/common.cuh"
#include "ops/cuda/recurrent.h"
#include "ops/cuda/gdn_chunked.h"
#include "ops/cuda/ssd_chunked.h"

namespace hylora::cuda {
using namespace detail;

namespace {
constexpr int kTC = 16;  // tokens staged per chunk

template <typename T>
__global__ void __launch_bounds__(256) gdn_kernel(const T* __restrict__ q, int64_t ldq, const T* __restrict__ k,
                                                  int64_t ldk, const T* __restrict__ v, int64_t ldv,
                                                  const T* __restrict__ g, int64_t ldg, const T* __restrict__ beta,
                                                  int64_t ldb, T* __restrict__ o, int64_t ldo, float* state_pool,
                                                  const int32_t* __restrict__ state_slot,
                                                  const int32_t* __restrict__ cu, int Hk, int Hv, int Dk, int Dv) {
  __shared__ float qs[kTC][256], ks[kTC][256], vs[kTC][32], dec[kTC], bet[kTC];
  __shared__ float red_u[8][32], red_o[8][32];
  const int s = blockIdx.x, h = blockIdx.y, j0 = blockIdx.z * 32;
  const int slot = state_slot[s];
  if (slot < 0) return;
  const int kh = h / (Hv / Hk);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int j = j0 + lane;
  const bool colok = j < Dv;
  float* Sp = state_pool + (static_cast<int64_t>(slot) * Hv + h) * Dk * Dv;
  float Sr[32];
#pragma unroll
  for (int a = 0; a < 32; ++a) {
    const int i = w + 8 * a;
    Sr[a] = (i < Dk && colok) ? Sp[static_cast<int64_t>(i) * Dv + j] : 0.0f;
  }
  const float qscale = rsqrtf(static_cast<float>(Dk));
  const int t0 = cu[s], t1 = cu[s + 1];
  for (int c0 = t0; c0 < t1; c0 += kTC) {
    const int nt = min(kTC, t1 - c0);
    for (int e = threadIdx.x; e < kTC * Dk; e += blockDim.x) {
      const int tt = e / Dk, i = e % Dk;
      float qv = 0.0f, kv = 0.0f;
      if (tt < nt) {
        qv = ld(q + static_cast<int64_t>(c0 + tt) * ldq + static_cast<int64_t>(kh) * Dk + i);
        kv = ld(k + static_cast<int64_t>(c0 + tt) * ldk + static_cast<int64_t>(kh) * Dk + i);
      }
      qs[tt][i] = qv;
      ks[tt][i] = kv;
    }
    for (int e = threadIdx.x; e < kTC * 32; e += blockDim.x) {
      const int tt = e / 32, jj = e % 32;
      vs[tt][jj] = (tt < nt && j0 + jj < Dv) ? ld(v + static_cast<int64_t>(c0 + tt) * ldv +
                                                   static_cast<int64_t>(h) * Dv + j0 + jj)
                                             : 0.0f;
    }
    if (threadIdx.x < kTC) {
      const int tt = threadIdx.x;
      dec[tt] = tt < nt ? expf(ld(g + static_cast<int64_t>(c0 + tt) * ldg + h)) : 1.0f;
      bet[tt] = tt < nt ? ld(beta + static_cast<int64_t>(c0 + tt) * ldb + h) : 0.0f;
    }
    __syncthreads();
    // l2 norms: 2*kTC vectors over 8 warps
    for (int vec = w; vec < 2 * kTC; vec += 8) {
      float* p = vec < kTC ? qs[vec] : ks[vec - kTC];
      float ss = 0.0f;
      for (int i = lane; i < Dk; i += 32) ss += p[i] * p[i];
      ss = warp_sum(ss);
      const float r = 1.0f / sqrtf(ss + 1e-6f) * (vec < kTC ? qscale : 1.0f);
      for (int i = lane; i < Dk; i += 32) p[i] *= r;
    }
    __syncthreads();
    for (int tt = 0; tt < nt; ++tt) {
      const float dk = dec[tt];
      float up = 0.0f;
#pragma unroll
      for (int a = 0; a < 32; ++a) {
        const int i = w + 8 * a;
        if (i < Dk) up += Sr[a] * ks[tt][i];
      }
      red_u[w][lane] = up;
      __syncthreads();
      float u = 0.0f;
#pragma unroll
      for (int ww = 0; ww < 8; ++ww) u += red_u[ww][lane];
      const float d = bet[tt] * (vs[tt][lane] - dk * u);
      float op = 0.0f;
#pragma unroll
      for (int a = 0; a < 32; ++a) {
        const int i = w + 8 * a;
        if (i < Dk) {
          Sr[a] = dk * Sr[a] + ks[tt][i] * d;
          op += qs[tt][i] * Sr[a];
        }
      }
      red_o[w][lane] = op;
      __syncthreads();
      if (w == 0 && colok) {
        float acc = 0.0f;
#pragma unroll
        for (int ww = 0; ww < 8; ++ww) acc += red_o[ww][lane];
        st(o + static_cast<int64_t>(c0 + tt) * ldo + static_cast<int64_t>(h) * Dv + j, acc);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int a = 0; a < 32; ++a) {
    const int i = w + 8 * a;
    if (i < Dk && colok) Sp[static_cast<int64_t>(i) * Dv + j] = Sr[a];
  }
}

// Single-warp variant for Dk ≤ 128 (Qwen3.5: 128): lane j owns column j of a 32-column tile and all Dk rows of it in
// registers, so u_j and o_j are in-thread sums: no barrier and no cross-warp reduction per token (the per-token
// latency is what bounds a sequential prefill).
template <typename T>
__global__ void __launch_bounds__(32) gdn_warp_kernel(const T* __restrict__ q, int64_t ldq, const T* __restrict__ k,
                                                      int64_t ldk, const T* __restrict__ v, int64_t ldv,
                                                      const T* __restrict__ g, int64_t ldg, const T* __restrict__ beta,
                                                      int64_t ldb, T* __restrict__ o, int64_t ldo, float* state_pool,
                                                      const int32_t* __restrict__ state_slot,
                                                      const int32_t* __restrict__ cu, int Hk, int Hv, int Dk, int Dv) {
  __shared__ float qs[kTC][128], ks[kTC][128], vs[kTC][32], dec[kTC], bet[kTC];
  const int s = blockIdx.x, h = blockIdx.y, j0 = blockIdx.z * 32;
  const int slot = state_slot[s];
  if (slot < 0) return;
  const int kh = h / (Hv / Hk);
  const int lane = threadIdx.x;
  const int j = j0 + lane;
  const bool colok = j < Dv;
  float* Sp = state_pool + (static_cast<int64_t>(slot) * Hv + h) * Dk * Dv;
  float Sr[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) Sr[i] = (i < Dk && colok) ? Sp[static_cast<int64_t>(i) * Dv + j] : 0.0f;
  const float qscale = rsqrtf(static_cast<float>(Dk));
  const int t0 = cu[s], t1 = cu[s + 1];
  for (int c0 = t0; c0 < t1; c0 += kTC) {
    const int nt = min(kTC, t1 - c0);
    __syncwarp();
    // raw q/k rows of the chunk, 8 independent loads in flight per lane
    constexpr int U = 8;
    for (int e0 = lane; e0 < kTC * Dk; e0 += 32 * U) {
      float qv[U], kv[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int e = e0 + 32 * u, tt = e / Dk, i = e % Dk;
        qv[u] = 0.0f;
        kv[u] = 0.0f;
        if (e < kTC * Dk && tt < nt) {
          qv[u] = ld(q + static_cast<int64_t>(c0 + tt) * ldq + static_cast<int64_t>(kh) * Dk + i);
          kv[u] = ld(k + static_cast<int64_t>(c0 + tt) * ldk + static_cast<int64_t>(kh) * Dk + i);
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int e = e0 + 32 * u, tt = e / Dk, i = e % Dk;
        if (e < kTC * Dk) {
          qs[tt][i] = qv[u];
          ks[tt][i] = kv[u];
        }
      }
    }
#pragma unroll
    for (int tt = 0; tt < kTC; ++tt)
      vs[tt][lane] = (tt < nt && colok) ? ld(v + static_cast<int64_t>(c0 + tt) * ldv + static_cast<int64_t>(h) * Dv + j)
                                        : 0.0f;
    __syncwarp();
    for (int tt = 0; tt < nt; ++tt) {  // l2 norms (lanes rescale the elements they summed)
      float sq = 0.0f, sk = 0.0f;
      for (int i = lane; i < Dk; i += 32) {
        sq += qs[tt][i] * qs[tt][i];
        sk += ks[tt][i] * ks[tt][i];
      }
      sq = warp_sum(sq);
      sk = warp_sum(sk);
      const float rq = 1.0f / sqrtf(sq + 1e-6f) * qscale, rk = 1.0f / sqrtf(sk + 1e-6f);
      for (int i = lane; i < Dk; i += 32) {
        qs[tt][i] *= rq;
        ks[tt][i] *= rk;
      }
    }
    if (lane < kTC) {
      dec[lane] = lane < nt ? expf(ld(g + static_cast<int64_t>(c0 + lane) * ldg + h)) : 1.0f;
      bet[lane] = lane < nt ? ld(beta + static_cast<int64_t>(c0 + lane) * ldb + h) : 0.0f;
    }
    __syncwarp();
    for (int tt = 0; tt < nt; ++tt) {
      const float dk = dec[tt];
      float u0 = 0.0f, u1 = 0.0f;
#pragma unroll
      for (int i = 0; i < 128; i += 2) {
        if (i < Dk) u0 += Sr[i] * ks[tt][i];
        if (i + 1 < Dk) u1 += Sr[i + 1] * ks[tt][i + 1];
      }
      const float d = bet[tt] * (vs[tt][lane] - dk * (u0 + u1));
      float o0 = 0.0f, o1 = 0.0f;
#pragma unroll
      for (int i = 0; i < 128; i += 2) {
        if (i < Dk) {
          Sr[i] = dk * Sr[i] + ks[tt][i] * d;
          o0 += qs[tt][i] * Sr[i];
        }
        if (i + 1 < Dk) {
          Sr[i + 1] = dk * Sr[i + 1] + ks[tt][i + 1] * d;
          o1 += qs[tt][i + 1] * Sr[i + 1];
        }
      }
      if (colok) st(o + static_cast<int64_t>(c0 + tt) * ldo + static_cast<int64_t>(h) * Dv + j, o0 + o1);
    }
  }
#pragma unroll
  for (int i = 0; i < 128; ++i)
    if (i < Dk && colok) Sp[static_cast<int64_t>(i) * Dv + j] = Sr[i];
}

__device__ __forceinline__ float softplus_t20(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

template <typename T>
__global__ void __launch_bounds__(256) ssm_kernel(const T* __restrict__ x, int64_t ldx, const T* __restrict__ dtr,
                                                  int64_t lddt, const T* __restrict__ Bm, int64_t ldB,
                                                  const T* __restrict__ Cm, int64_t ldC, const float* __restrict__ A,
                                                  const float* __restrict__ Dd, const float* __restrict__ dt_bias,
                                                  float dt_min, T* __restrict__ y, int64_t ldy, float* state_pool,
                                                  const int32_t* __restrict__ state_slot,
                                                  const int32_t* __restrict__ cu, int nh, int hd, int G, int N) {
  __shared__ float xs[kTC][8], Bs[kTC][256], Cs[kTC][256], dl[kTC], dc[kTC];
  const int s = blockIdx.x, h = blockIdx.y, p0 = blockIdx.z * 8;
  const int slot = state_slot[s];
  if (slot < 0) return;
  const int gi = h / (nh / G);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int pch = p0 + w;
  const bool pok = pch < hd;
  float* Sp = state_pool + ((static_cast<int64_t>(slot) * nh + h) * hd + pch) * N;  // row pch of [hd, N]
  float Sr[8];
#pragma unroll
  for (int a = 0; a < 8; ++a) {
    const int n = lane + 32 * a;
    Sr[a] = (n < N && pok) ? Sp[n] : 0.0f;
  }
  const float a_h = A[h], d_h = Dd[h], bias = dt_bias ? dt_bias[h] : 0.0f;
  const int t0 = cu[s], t1 = cu[s + 1];
  for (int c0 = t0; c0 < t1; c0 += kTC) {
    const int nt = min(kTC, t1 - c0);
    for (int e = threadIdx.x; e < kTC * N; e += blockDim.x) {
      const int tt = e / N, n = e % N;
      float bv = 0.0f, cv = 0.0f;
      if (tt < nt) {
        bv = ld(Bm + static_cast<int64_t>(c0 + tt) * ldB + static_cast<int64_t>(gi) * N + n);
        cv = ld(Cm + static_cast<int64_t>(c0 + tt) * ldC + static_cast<int64_t>(gi) * N + n);
      }
      Bs[tt][n] = bv;
      Cs[tt][n] = cv;
    }
    if (threadIdx.x < kTC * 8) {
      const int tt = threadIdx.x / 8, pp = threadIdx.x % 8;
      xs[tt][pp] = (tt < nt && p0 + pp < hd)
                       ? ld(x + static_cast<int64_t>(c0 + tt) * ldx + static_cast<int64_t>(h) * hd + p0 + pp)
                       : 0.0f;
    }
    if (threadIdx.x >= 128 && threadIdx.x < 128 + kTC) {
      const int tt = threadIdx.x - 128;
      float delta = 0.0f;
      if (tt < nt) delta = fmaxf(softplus_t20(ld(dtr + static_cast<int64_t>(c0 + tt) * lddt + h) + bias), dt_min);
      dl[tt] = delta;
      dc[tt] = expf(delta * a_h);
    }
    __syncthreads();
    for (int tt = 0; tt < nt; ++tt) {
      const float decay = dc[tt], xv = xs[tt][w], dx = dl[tt] * xv;
      float yp = 0.0f;
#pragma unroll
      for (int a = 0; a < 8; ++a) {
        const int n = lane + 32 * a;
        if (n < N) {
          Sr[a] = decay * Sr[a] + dx * Bs[tt][n];
          yp += Sr[a] * Cs[tt][n];
        }
      }
      yp = warp_sum(yp);
      if (lane == 0 && pok)
        st(y + static_cast<int64_t>(c0 + tt) * ldy + static_cast<int64_t>(h) * hd + pch, yp + d_h * xv);
    }
    __syncthreads();
  }
#pragma unroll
  for (int a = 0; a < 8; ++a) {
    const int n = lane + 32 * a;
    if (n < N && pok) Sp[n] = Sr[a];
  }
}

// Row of sequence lookup: binary search over cu_seqlens.
__device__ __forceinline__ int seq_of_row(const int32_t* cu, int S, int t) {
  int lo = 0, hi = S - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (cu[mid] <= t) lo = mid; else hi = mid - 1;
  }
  return lo;
}

template <typename T>
__global__ void conv_kernel(const T* __restrict__ x, int64_t ldx, const T* __restrict__ w, const T* __restrict__ bias,
                            T* __restrict__ y, int64_t ldy, const float* __restrict__ state_pool,
                            const int32_t* __restrict__ state_slot, const int32_t* __restrict__ cu, int S, int C,
                            int K, bool silu) {
  const int t = blockIdx.x;
  const int s = seq_of_row(cu, S, t);
  if (t >= cu[s + 1] || t < cu[s]) return;  // rows past cu[S] (none when T = cu[S])
  const int slot = state_slot[s];
  if (slot < 0) return;
  const int i = t - cu[s];
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float acc = bias ? ld(bias + c) : 0.0f;
    const float* st_c = state_pool + (static_cast<int64_t>(slot) * C + c) * (K - 1);
    for (int jj = 0; jj < K; ++jj) {
      const int ui = i + jj;  // index into u = [state (K-1), x]
      const float uv = ui < K - 1 ? st_c[ui] : ld(x + static_cast<int64_t>(cu[s] + ui - (K - 1)) * ldx + c);
      acc += ld(w + static_cast<int64_t>(c) * K + jj) * uv;
    }
    st(y + static_cast<int64_t>(t) * ldy + c, silu ? silu_exact(acc) : acc);
  }
}

template <typename T>
__global__ void conv_state_kernel(const T* __restrict__ x, int64_t ldx, float* state_pool,
                                  const int32_t* __restrict__ state_slot, const int32_t* __restrict__ cu, int C,
                                  int K) {
  const int s = blockIdx.y;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int slot = state_slot[s];
  if (slot < 0 || c >= C) return;
  const int n = cu[s + 1] - cu[s];
  float* st_c = state_pool + (static_cast<int64_t>(slot) * C + c) * (K - 1);
  float u[7];
  for (int j = 0; j < K - 1; ++j) {
    const int ui = n + j;  // new state[j] = u[n + j]
    u[j] = ui < K - 1 ? st_c[ui] : ld(x + static_cast<int64_t>(cu[s] + ui - (K - 1)) * ldx + c);
  }
  for (int j = 0; j < K - 1; ++j) st_c[j] = u[j];
}
}  // namespace

cudaError_t gated_delta_rule(DType dt, const void* q, int64_t ldq, const void* k, int64_t ldk, const void* v,
                             int64_t ldv, const void* g, int64_t ldg, const void* beta, int64_t ldb, void* o,
                             int64_t ldo, float* state_pool, const int32_t* state_slot, const int32_t* cu_seqlens,
                             int64_t S, int64_t T, int64_t Hk, int64_t Hv, int64_t Dk, int64_t Dv,
                             cudaStream_t stream) {
  if (S == 0 || T == 0) return cudaSuccess;
  if (Hk <= 0 || Hv % Hk != 0 || Dk <= 0 || Dk > 256 || Dv <= 0) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(S), static_cast<unsigned>(Hv), static_cast<unsigned>((Dv + 31) / 32));
  const int hk = static_cast<int>(Hk), hv = static_cast<int>(Hv), dk = static_cast<int>(Dk),
            dv = static_cast<int>(Dv);
  // One warp per tile wins at decode (no barriers, 1.4x); a long sequence is bound by one warp's per-token latency
  // (shared-memory loads in its dependency chain, 4x slower than 8 warps at 8k tokens): use it for ≤ 4 rows/seq.
  if (Dk <= 128 && T <= 4 * S) {
    if (dt == DType::f32)
      gdn_warp_kernel<float><<<grid, 32, 0, stream>>>(
          static_cast<const float*>(q), ldq, static_cast<const float*>(k), ldk, static_cast<const float*>(v), ldv,
          static_cast<const float*>(g), ldg, static_cast<const float*>(beta), ldb, static_cast<float*>(o), ldo,
          state_pool, state_slot, cu_seqlens, hk, hv, dk, dv);
    else
      gdn_warp_kernel<__nv_bfloat16><<<grid, 32, 0, stream>>>(
          static_cast<const __nv_bfloat16*>(q), ldq, static_cast<const __nv_bfloat16*>(k), ldk,
          static_cast<const __nv_bfloat16*>(v), ldv, static_cast<const __nv_bfloat16*>(g), ldg,
          static_cast<const __nv_bfloat16*>(beta), ldb, static_cast<__nv_bfloat16*>(o), ldo, state_pool, state_slot,
          cu_seqlens, hk, hv, dk, dv);
    return cudaGetLastError();
  }
  // Prefill: the chunked form (gdn_chunked.cu) once sequences average ≥ 16 rows (any length is exact there).
  if (Dk <= 128 && T >= 16 * S && gdn_chunked_enabled())
    return gated_delta_rule_chunked(dt, q, ldq, k, ldk, v, ldv, g, ldg, beta, ldb, o, ldo, state_pool, state_slot,
                                    cu_seqlens, S, T, Hk, Hv, Dk, Dv, stream);
  if (dt == DType::f32)
    gdn_kernel<float><<<grid, 256, 0, stream>>>(
        static_cast<const float*>(q), ldq, static_cast<const float*>(k), ldk, static_cast<const float*>(v), ldv,
        static_cast<const float*>(g), ldg, static_cast<const float*>(beta), ldb, static_cast<float*>(o), ldo,
        state_pool, state_slot, cu_seqlens, hk, hv, dk, dv);
  else
    gdn_kernel<__nv_bfloat16><<<grid, 256, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(q), ldq, static_cast<const __nv_bfloat16*>(k), ldk,
        static_cast<const __nv_bfloat16*>(v), ldv, static_cast<const __nv_bfloat16*>(g), ldg,
        static_cast<const __nv_bfloat16*>(beta), ldb, static_cast<__nv_bfloat16*>(o), ldo, state_pool, state_slot,
        cu_seqlens, hk, hv, dk, dv);
  return cudaGetLastError();
}

cudaError_t ssm_scan(DType dt, const void* x, int64_t ldx, const void* dtr, int64_t lddt, const void* B, int64_t ldB,
                     const void* C, int64_t ldC, const float* A, const float* D, const float* dt_bias, float dt_min,
                     void* y, int64_t ldy, float* state_pool, const int32_t* state_slot, const int32_t* cu_seqlens,
                     int64_t S, int64_t T, int64_t nh, int64_t hd, int64_t G, int64_t N, cudaStream_t stream) {
  if (S == 0 || T == 0) return cudaSuccess;
  if (G <= 0 || nh % G != 0 || N <= 0 || N > 256 || hd <= 0) return cudaErrorInvalidValue;
  // Prefill: the chunked form (ssd_chunked.cu, when enabled) once sequences average ≥ 16 rows.
  if (N <= 128 && T >= 16 * S && ssd_chunked_enabled())
    return ssm_scan_chunked(dt, x, ldx, dtr, lddt, B, ldB, C, ldC, A, D, dt_bias, dt_min, y, ldy, state_pool,
                            state_slot, cu_seqlens, S, T, nh, hd, G, N, stream);
  const dim3 grid(static_cast<unsigned>(S), static_cast<unsigned>(nh), static_cast<unsigned>((hd + 7) / 8));
  const int a = static_cast<int>(nh), b = static_cast<int>(hd), c = static_cast<int>(G), d = static_cast<int>(N);
  if (dt == DType::f32)
    ssm_kernel<float><<<grid, 256, 0, stream>>>(
        static_cast<const float*>(x), ldx, static_cast<const float*>(dtr), lddt, static_cast<const float*>(B), ldB,
        static_cast<const float*>(C), ldC, A, D, dt_bias, dt_min, static_cast<float*>(y), ldy, state_pool,
        state_slot, cu_seqlens, a, b, c, d);
  else
    ssm_kernel<__nv_bfloat16><<<grid, 256, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(x), ldx, static_cast<const __nv_bfloat16*>(dtr), lddt,
        static_cast<const __nv_bfloat16*>(B), ldB, static_cast<const __nv_bfloat16*>(C), ldC, A, D, dt_bias, dt_min,
        static_cast<__nv_bfloat16*>(y), ldy, state_pool, state_slot, cu_seqlens, a, b, c, d);
  return cudaGetLastError();
}

cudaError_t causal_conv1d(DType dt, const void* x, int64_t ldx, const void* w, const void* bias, void* y, int64_t ldy,
                          float* state_pool, const int32_t* state_slot, const int32_t* cu_seqlens, int64_t S,
                          int64_t T, int64_t C, int64_t K, bool silu, cudaStream_t stream) {
  if (S == 0 || C == 0) return cudaSuccess;
  if (K < 2 || K > 8) return cudaErrorInvalidValue;
  const int nt = C >= 256 ? 256 : 128;
  const dim3 sgrid(static_cast<unsigned>((C + 127) / 128), static_cast<unsigned>(S));
  const int Si = static_cast<int>(S), Ci = static_cast<int>(C), Ki = static_cast<int>(K);
  if (dt == DType::f32) {
    if (T > 0)
      conv_kernel<float><<<static_cast<unsigned>(T), nt, 0, stream>>>(
          static_cast<const float*>(x), ldx, static_cast<const float*>(w), static_cast<const float*>(bias),
          static_cast<float*>(y), ldy, state_pool, state_slot, cu_seqlens, Si, Ci, Ki, silu);
    conv_state_kernel<float><<<sgrid, 128, 0, stream>>>(static_cast<const float*>(x), ldx, state_pool, state_slot,
                                                        cu_seqlens, Ci, Ki);
  } else {
    if (T > 0)
      conv_kernel<__nv_bfloat16><<<static_cast<unsigned>(T), nt, 0, stream>>>(
          static_cast<const __nv_bfloat16*>(x), ldx, static_cast<const __nv_bfloat16*>(w),
          static_cast<const __nv_bfloat16*>(bias), static_cast<__nv_bfloat16*>(y), ldy, state_pool, state_slot,
          cu_seqlens, Si, Ci, Ki, silu);
    conv_state_kernel<__nv_bfloat16><<<sgrid, 128, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), ldx,
                                                                state_pool, state_slot, cu_seqlens, Ci, Ki);
  }
  return cudaGetLastError();
}

}  // namespace hylora::cuda
