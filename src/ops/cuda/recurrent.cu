// Recurrent ops (math in recurrent.h).
// gated_delta_rule, Dk ≤ 128 and ≤ 4 rows per sequence (decode): 4 warps per (sequence, value head, 32 Dv columns),
//   float4 state tiles in registers, two cross-warp reductions per token (gdn_decode_kernel). Otherwise: block =
//   (sequence, value head, 32 Dv columns), 8 warps; lane j owns column j of the tile, warp w
//   owns rows i ≡ w (mod 8) of S (≤ 32 rows per thread, in registers). Tokens are staged 16 at a time (q, k with their
//   l2 norms applied, the v tile, decay and β); per token two cross-warp reductions through shared memory give
//   u_j = Σ_i S_ij k̂_i and o_j = Σ_i S_ij q̂_i.
// ssm_scan: block = (sequence, head, 8 channels of hd), warp w owns channel p0 + w, lane l owns states
//   n ≡ l (mod 32) (≤ 8 per thread; state rows are read and written coalesced). Tokens staged 16 at a time (x tile,
//   Δ, decay, B, C) behind one barrier; per token y_p = Σ_n S_pn C_n is a warp-shuffle sum (no barrier).
// causal_conv1d: one thread per (row, channel), grid (rows, channel blocks of 128), reads its K inputs from x or,
//   before the sequence start, from the slot's state; a second kernel (one thread per (sequence, channel)) writes
//   the new state after all reads.
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

// Decode kernel (Dk ≤ 128, few rows per sequence). Block = (sequence, value head, 32 Dv columns), 128 threads =
// 4 warps. Decode is bound by streaming the fp32 state (Dk×Dv per head, read and written once per step), so the
// design maximises loads in flight: thread (rg = tid / 8, cq = tid % 8) owns the 4 columns j0 + 4·cq .. +3 (one float4)
// of rows i ≡ rg (mod 16), i.e. ≤ 8 float4 state loads issued back to back per thread (16 KB per block; a warp reads
// 4 full 128-byte row segments per instruction). The old single-warp kernel had only 32 threads per tile and scalar
// loads (230 µs/layer at batch 64 ≈ 4× the bytes floor; at batch 1 its 128 warps left most SMs idle).
// Per token: q, k rows of the key head go to shared memory with their l2 norms (warp sums + 4-way cross-warp sum);
// u_j = Σ_i S_ij k̂_i and o_j = Σ_i S_ij q̂_i are reduced over the 4 row groups of a warp by shuffles (xor 8, 16) and
// over the 4 warps through shared memory: three barriers per token, nothing per state element. The state is loaded
// before the first token's inputs so both latencies overlap. Grid (S, Hv, ⌈Dv/32⌉): batch 1 at Qwen3.5 shapes gives
// 128 blocks (≈ one per SM), batch 64 gives 8192. Slot −1 (padding) exits before any barrier (block-uniform).
constexpr int kDecThreads = 128;
template <typename T>
__global__ void __launch_bounds__(kDecThreads) gdn_decode_kernel(
    const T* __restrict__ q, int64_t ldq, const T* __restrict__ k, int64_t ldk, const T* __restrict__ v, int64_t ldv,
    const T* __restrict__ g, int64_t ldg, const T* __restrict__ beta, int64_t ldb, T* __restrict__ o, int64_t ldo,
    float* state_pool, const int32_t* __restrict__ state_slot, const int32_t* __restrict__ cu, int Hk, int Hv, int Dk,
    int Dv, bool vec) {
  __shared__ float qs[128], ks[128], red_n[2][4], red_u[4][32], red_o[4][32], gb[2];
  const int s = blockIdx.x, h = blockIdx.y, j0 = blockIdx.z * 32;
  const int slot = state_slot[s];
  if (slot < 0) return;
  const int kh = h / (Hv / Hk);
  const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
  const int cq = tid & 7, rg = tid >> 3;  // column quad, row group (0..15)
  const int jq = j0 + 4 * cq;             // first of this thread's 4 columns
  float* Sp = state_pool + (static_cast<int64_t>(slot) * Hv + h) * Dk * Dv;
  float Sr[8][4];
  // vec: Dv % 4 == 0 (every row and quad 16-byte aligned), so a quad is entirely inside or outside [0, Dv)
#pragma unroll
  for (int a = 0; a < 8; ++a) {
    const int i = rg + 16 * a;
    const float* p = Sp + static_cast<int64_t>(i) * Dv + jq;
    if (vec) {
      float4 f = make_float4(0.f, 0.f, 0.f, 0.f);
      if (i < Dk && jq < Dv) f = *reinterpret_cast<const float4*>(p);
      Sr[a][0] = f.x; Sr[a][1] = f.y; Sr[a][2] = f.z; Sr[a][3] = f.w;
    } else {
#pragma unroll
      for (int c = 0; c < 4; ++c) Sr[a][c] = (i < Dk && jq + c < Dv) ? p[c] : 0.0f;
    }
  }
  const float qscale = rsqrtf(static_cast<float>(Dk));
  const int t0 = cu[s], t1 = cu[s + 1];
  for (int t = t0; t < t1; ++t) {
    // (1) raw q, k of the key head, squared sums, decay and β; v of this thread's columns into registers
    float qv = 0.0f, kv = 0.0f;
    if (tid < Dk) {
      qv = ld(q + static_cast<int64_t>(t) * ldq + static_cast<int64_t>(kh) * Dk + tid);
      kv = ld(k + static_cast<int64_t>(t) * ldk + static_cast<int64_t>(kh) * Dk + tid);
      qs[tid] = qv;
      ks[tid] = kv;
    }
    float vv[4];
#pragma unroll
    for (int c = 0; c < 4; ++c)
      vv[c] = jq + c < Dv ? ld(v + static_cast<int64_t>(t) * ldv + static_cast<int64_t>(h) * Dv + jq + c) : 0.0f;
    if (tid == 0) {
      gb[0] = expf(ld(g + static_cast<int64_t>(t) * ldg + h));
      gb[1] = ld(beta + static_cast<int64_t>(t) * ldb + h);
    }
    const float sq = warp_sum(qv * qv), sk = warp_sum(kv * kv);
    if (lane == 0) {
      red_n[0][w] = sq;
      red_n[1][w] = sk;
    }
    __syncthreads();  // B1: qs, ks, red_n, gb
    const float rq = qscale / sqrtf(red_n[0][0] + red_n[0][1] + red_n[0][2] + red_n[0][3] + 1e-6f);
    const float rk = 1.0f / sqrtf(red_n[1][0] + red_n[1][1] + red_n[1][2] + red_n[1][3] + 1e-6f);
    const float dk = gb[0], bt = gb[1];
    // (2) u = Sᵀ k̂ on the undecayed state (the decay multiplies u below)
    float kh_r[8];
    float up[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int a = 0; a < 8; ++a) {
      const int i = rg + 16 * a;
      kh_r[a] = i < Dk ? ks[i] * rk : 0.0f;
#pragma unroll
      for (int c = 0; c < 4; ++c) up[c] += Sr[a][c] * kh_r[a];
    }
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      up[c] += __shfl_xor_sync(0xffffffffu, up[c], 8);
      up[c] += __shfl_xor_sync(0xffffffffu, up[c], 16);
    }
    if (lane < 8) {
#pragma unroll
      for (int c = 0; c < 4; ++c) red_u[w][4 * cq + c] = up[c];
    }
    __syncthreads();  // B2: red_u
    // (3) d = β (v − e^g u);  S ← e^g S + k̂ ⊗ d;  partial o = Sᵀ q̂
    float d[4], op[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int jj = 4 * cq + c;
      d[c] = bt * (vv[c] - dk * (red_u[0][jj] + red_u[1][jj] + red_u[2][jj] + red_u[3][jj]));
    }
#pragma unroll
    for (int a = 0; a < 8; ++a) {
      const int i = rg + 16 * a;
      const float qh = i < Dk ? qs[i] * rq : 0.0f;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        Sr[a][c] = dk * Sr[a][c] + kh_r[a] * d[c];
        op[c] += qh * Sr[a][c];
      }
    }
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      op[c] += __shfl_xor_sync(0xffffffffu, op[c], 8);
      op[c] += __shfl_xor_sync(0xffffffffu, op[c], 16);
    }
    if (lane < 8) {
#pragma unroll
      for (int c = 0; c < 4; ++c) red_o[w][4 * cq + c] = op[c];
    }
    __syncthreads();  // B3: red_o; also orders this token's reads of qs/ks/red_n/gb/red_u before the next writes
    if (tid < 32 && j0 + tid < Dv)
      st(o + static_cast<int64_t>(t) * ldo + static_cast<int64_t>(h) * Dv + j0 + tid,
         red_o[0][tid] + red_o[1][tid] + red_o[2][tid] + red_o[3][tid]);
    // red_o is next written after the next token's B1 and B2, which these threads reach only after this read.
  }
  // rows ≥ Dk and columns ≥ Dv stayed zero in registers and are not written back
#pragma unroll
  for (int a = 0; a < 8; ++a) {
    const int i = rg + 16 * a;
    if (i >= Dk) continue;
    float* p = Sp + static_cast<int64_t>(i) * Dv + jq;
    if (vec) {
      if (jq < Dv) *reinterpret_cast<float4*>(p) = make_float4(Sr[a][0], Sr[a][1], Sr[a][2], Sr[a][3]);
    } else {
#pragma unroll
      for (int c = 0; c < 4; ++c)
        if (jq + c < Dv) p[c] = Sr[a][c];
    }
  }
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

// Grid (row t, channel block of kConvThreads): one thread per (row, channel). The old grid had one block per row
// looping over all C channels, so a decode step at batch 1 ran one block on one SM through 8192/256 = 32 serial
// rounds of dependent loads (30 µs); now C/128 blocks per row run in parallel (64 at C = 8192).
constexpr int kConvThreads = 128;
template <typename T>
__global__ void __launch_bounds__(kConvThreads) conv_kernel(const T* __restrict__ x, int64_t ldx,
                                                            const T* __restrict__ w, const T* __restrict__ bias,
                                                            T* __restrict__ y, int64_t ldy,
                                                            const float* __restrict__ state_pool,
                                                            const int32_t* __restrict__ state_slot,
                                                            const int32_t* __restrict__ cu, int S, int C, int K,
                                                            bool silu) {
  const int t = blockIdx.x;
  const int c = blockIdx.y * kConvThreads + threadIdx.x;
  if (c >= C) return;
  const int s = seq_of_row(cu, S, t);
  if (t >= cu[s + 1] || t < cu[s]) return;  // rows past cu[S] (none when T = cu[S])
  const int slot = state_slot[s];
  if (slot < 0) return;
  const int i = t - cu[s];
  float acc = bias ? ld(bias + c) : 0.0f;
  const float* st_c = state_pool + (static_cast<int64_t>(slot) * C + c) * (K - 1);
  for (int jj = 0; jj < K; ++jj) {
    const int ui = i + jj;  // index into u = [state (K-1), x]
    const float uv = ui < K - 1 ? st_c[ui] : ld(x + static_cast<int64_t>(cu[s] + ui - (K - 1)) * ldx + c);
    acc += ld(w + static_cast<int64_t>(c) * K + jj) * uv;
  }
  st(y + static_cast<int64_t>(t) * ldy + c, silu ? silu_exact(acc) : acc);
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
                             int64_t S, int64_t T, int64_t Hk, int64_t Hv, int64_t Dk, int64_t Dv, float* workspace,
                             cudaStream_t stream) {
  if (S == 0 || T == 0) return cudaSuccess;
  if (Hk <= 0 || Hv % Hk != 0 || Dk <= 0 || Dk > 256 || Dv <= 0) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(S), static_cast<unsigned>(Hv), static_cast<unsigned>((Dv + 31) / 32));
  const int hk = static_cast<int>(Hk), hv = static_cast<int>(Hv), dk = static_cast<int>(Dk),
            dv = static_cast<int>(Dv);
  // Decode kernel (128 threads per tile, float4 state streaming) for ≤ 4 rows per sequence; a long sequence is bound
  // by the per-token latency of its chain and goes to gdn_kernel.
  if (Dk <= 128 && T <= 4 * S) {
    // float4 state access needs 16-byte aligned rows: Dv % 4 == 0 (the pool itself comes from the allocator)
    const bool vec = Dv % 4 == 0 && reinterpret_cast<uintptr_t>(state_pool) % 16 == 0;
    if (dt == DType::f32)
      gdn_decode_kernel<float><<<grid, kDecThreads, 0, stream>>>(
          static_cast<const float*>(q), ldq, static_cast<const float*>(k), ldk, static_cast<const float*>(v), ldv,
          static_cast<const float*>(g), ldg, static_cast<const float*>(beta), ldb, static_cast<float*>(o), ldo,
          state_pool, state_slot, cu_seqlens, hk, hv, dk, dv, vec);
    else
      gdn_decode_kernel<__nv_bfloat16><<<grid, kDecThreads, 0, stream>>>(
          static_cast<const __nv_bfloat16*>(q), ldq, static_cast<const __nv_bfloat16*>(k), ldk,
          static_cast<const __nv_bfloat16*>(v), ldv, static_cast<const __nv_bfloat16*>(g), ldg,
          static_cast<const __nv_bfloat16*>(beta), ldb, static_cast<__nv_bfloat16*>(o), ldo, state_pool, state_slot,
          cu_seqlens, hk, hv, dk, dv, vec);
    return cudaGetLastError();
  }
  // Prefill: the chunked form (gdn_chunked.cu) once sequences average ≥ 16 rows (any length is exact there).
  if (workspace != nullptr && gated_delta_rule_workspace_floats(S, T, Hk, Hv, Dk, Dv) > 0)
    return gated_delta_rule_chunked(dt, q, ldq, k, ldk, v, ldv, g, ldg, beta, ldb, o, ldo, state_pool, state_slot,
                                    cu_seqlens, S, T, Hk, Hv, Dk, Dv, workspace, stream);
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

size_t gated_delta_rule_workspace_floats(int64_t S, int64_t T, int64_t Hk, int64_t Hv, int64_t Dk, int64_t Dv) {
  const bool chunked = S > 0 && T >= 16 * S && Dk <= 128 && Dv <= 128 && gdn_chunked_enabled();
  return chunked ? gated_delta_rule_chunked_workspace_floats(S, T, Hk, Hv, Dk, Dv) : 0;
}

cudaError_t ssm_scan(DType dt, const void* x, int64_t ldx, const void* dtr, int64_t lddt, const void* B, int64_t ldB,
                     const void* C, int64_t ldC, const float* A, const float* D, const float* dt_bias, float dt_min,
                     void* y, int64_t ldy, float* state_pool, const int32_t* state_slot, const int32_t* cu_seqlens,
                     int64_t S, int64_t T, int64_t nh, int64_t hd, int64_t G, int64_t N, cudaStream_t stream) {
  if (S == 0 || T == 0) return cudaSuccess;
  if (G <= 0 || nh % G != 0 || N <= 0 || N > 256 || hd <= 0) return cudaErrorInvalidValue;
  // Prefill: the chunked form (ssd_chunked.cu) once sequences average ≥ 16 rows and there are heads enough to fill
  // the GPU with it (H200, 1×8k: 2.0× faster at 128 heads, 0.94× at 32; Nemotron-3 has 64 and 128).
  if (N <= 128 && T >= 16 * S && nh * S >= 64 && ssd_chunked_enabled())
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
  const dim3 cgrid(static_cast<unsigned>(T > 0 ? T : 1),
                   static_cast<unsigned>((C + kConvThreads - 1) / kConvThreads));
  const dim3 sgrid(static_cast<unsigned>((C + 127) / 128), static_cast<unsigned>(S));
  const int Si = static_cast<int>(S), Ci = static_cast<int>(C), Ki = static_cast<int>(K);
  if (dt == DType::f32) {
    if (T > 0)
      conv_kernel<float><<<cgrid, kConvThreads, 0, stream>>>(
          static_cast<const float*>(x), ldx, static_cast<const float*>(w), static_cast<const float*>(bias),
          static_cast<float*>(y), ldy, state_pool, state_slot, cu_seqlens, Si, Ci, Ki, silu);
    conv_state_kernel<float><<<sgrid, 128, 0, stream>>>(static_cast<const float*>(x), ldx, state_pool, state_slot,
                                                        cu_seqlens, Ci, Ki);
  } else {
    if (T > 0)
      conv_kernel<__nv_bfloat16><<<cgrid, kConvThreads, 0, stream>>>(
          static_cast<const __nv_bfloat16*>(x), ldx, static_cast<const __nv_bfloat16*>(w),
          static_cast<const __nv_bfloat16*>(bias), static_cast<__nv_bfloat16*>(y), ldy, state_pool, state_slot,
          cu_seqlens, Si, Ci, Ki, silu);
    conv_state_kernel<__nv_bfloat16><<<sgrid, 128, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), ldx,
                                                                state_pool, state_slot, cu_seqlens, Ci, Ki);
  }
  return cudaGetLastError();
}

}  // namespace hylora::cuda
