// TEMPORARY: the previous one-kernel chunked gated delta rule, kept only for the side-by-side timing of the new
// three-kernel form (gdn_chunked.cu); math in gdn_chunked.h.
// Block = (sequence, value head, 32 Dv columns), 256 threads; the block walks its sequence chunk by chunk (C = 64),
// the state tile S [Dk, 32] in shared memory. Per chunk, between barriers:
//   1 load q, k [C, Dk], the v tile [C, 32], g, β (rows past the sequence end are zero, g = 0, β = 0: they add
//     nothing and leave the decay unchanged)
//   2 l2-normalise q, k (one warp per row); warp 0 also scans g into b and e^{b_last − b}
//   3 L, P [C, C] (K̂K̂ᵀ, Q̂K̂ᵀ with decay ratios; thread = 4×4 outputs) and, in the same pass over Dk, K̂S0, Q̂S0
//     [C, 32] (thread = 4×2 outputs): R = β (v − γ K̂S0) goes to shared memory, O = γ Q̂S0 stays in registers
//   4 (I + L) D = R: the 16×16 diagonal blocks of I + L inverted in registers, then 4 block steps (the only
//     sequential part)
//   5 O += P D → output rows; S = γ_last S + K̂ᵀ (e^{b_last − b} D)
// Shared memory (105.5 KiB at Dk = 128, two blocks per SM with ≤ 128 registers): L and P share one [C, C+1] array (L
// below the diagonal, P transposed above it), D and the block inverses reuse Q̂'s space after step 3.
// The Dk-only work of steps 2-3 is repeated by the Dv/32 blocks of a head; all math is fp32 on CUDA cores for both
// activation dtypes (no TF32, no tensor cores). Decays use exp(b_t − b_s) with s ≤ t, so every exponent is ≤ 0 for
// g ≤ 0 (no overflow; e^{b} underflowing to 0 is the exact limit).
#include "ops/cuda/common.cuh"
#include "ops/cuda/chunk_state.cuh"
#include "ops/cuda/gdn_chunked.h"

namespace hylora::cuda {
using namespace detail;

namespace {
constexpr int kC = 64;     // chunk length (tokens)
constexpr int kTile = 32;  // Dv columns per block
static_assert(kTile == 32, "chunk_state_update (chunk_state.cuh) works on 32-column tiles");
constexpr int kLP = kC + 1;
constexpr int kAP = 17;  // row stride of the inverted 16×16 diagonal blocks

__host__ __device__ constexpr int smem_floats(int Dk) {
  // D and the block inverses (C·(32 + kAP) floats) alias Q̂ (C·(Dk+1)) when they fit (Dk ≥ 48): 105.5 KiB
  // at Dk = 128, so two blocks fit on an SM
  return 2 * kC * (Dk + 1) + kC * kTile + kC * kLP + Dk * kTile + 3 * kC +
         (Dk + 1 >= kTile + kAP ? 0 : kC * (kTile + kAP));
}

template <typename T>
__global__ void __launch_bounds__(256, 2) gdn_chunk_kernel(
    const T* __restrict__ q, int64_t ldq, const T* __restrict__ k, int64_t ldk, const T* __restrict__ v, int64_t ldv,
    const T* __restrict__ g, int64_t ldg, const T* __restrict__ beta, int64_t ldb, T* __restrict__ o, int64_t ldo,
    float* state_pool, const int32_t* __restrict__ state_slot, const int32_t* __restrict__ cu, int Hk, int Hv,
    int Dk, int Dv) {
  extern __shared__ float sm[];
  const int KP = Dk + 1;  // odd row stride: column walks over rows hit distinct banks
  float* Ks = sm;                // [C, KP] k̂
  float* Qs = Ks + kC * KP;      // [C, KP] q̂
  float* Rs = Qs + kC * KP;      // [C, 32] v tile, then R
  float* Ms = Rs + kC * kTile;   // [C, kLP]: L[t,s] at Ms[t, s] (s < t), P[t,s] at Ms[s, t] (s ≤ t)
  float* Ss = Ms + kC * kLP;     // [Dk, 32] state tile
  float* bs = Ss + Dk * kTile;   // [C] cumulative log decay in the chunk
  float* bet = bs + kC;          // [C] β
  float* ed = bet + kC;          // [C] e^{b_last − b_s}
  // Q̂ is dead after step 3: steps 4-5 keep D and the block inverses in its space if they fit (smem_floats)
  float* Ds = Dk + 1 >= kTile + kAP ? Qs : ed + kC;  // [C, 32] D
  float* Ai = Ds + kC * kTile;                       // [C, kAP] inverses of the 16×16 diagonal blocks of I + L (row 16b + r)

  const int s = blockIdx.x, h = blockIdx.y, j0 = blockIdx.z * kTile;
  const int slot = state_slot[s];
  if (slot < 0) return;  // whole block: no barrier skipped by part of it
  const int kh = h / (Hv / Hk);
  const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
  const int rg = tid >> 4, cg = tid & 15;  // 4×2 / 4×4 output tiles: rows rg + 16a, columns cg + 16c
  float* Sp = state_pool + (static_cast<int64_t>(slot) * Hv + h) * Dk * Dv;
  for (int e = tid; e < Dk * kTile; e += blockDim.x) {
    const int i = e / kTile, jj = e % kTile;
    Ss[e] = j0 + jj < Dv ? Sp[static_cast<int64_t>(i) * Dv + j0 + jj] : 0.0f;
  }
  const float qscale = rsqrtf(static_cast<float>(Dk));
  const int t0 = cu[s], t1 = cu[s + 1];
  for (int c0 = t0; c0 < t1; c0 += kC) {
    const int nt = min(kC, t1 - c0);
    // 1. load
    for (int e = tid; e < kC * Dk; e += blockDim.x) {
      const int tt = e / Dk, i = e % Dk;
      float qv = 0.0f, kv = 0.0f;
      if (tt < nt) {
        qv = ld(q + static_cast<int64_t>(c0 + tt) * ldq + static_cast<int64_t>(kh) * Dk + i);
        kv = ld(k + static_cast<int64_t>(c0 + tt) * ldk + static_cast<int64_t>(kh) * Dk + i);
      }
      Qs[tt * KP + i] = qv;
      Ks[tt * KP + i] = kv;
    }
    for (int e = tid; e < kC * kTile; e += blockDim.x) {
      const int tt = e / kTile, jj = e % kTile;
      Rs[e] = (tt < nt && j0 + jj < Dv)
                  ? ld(v + static_cast<int64_t>(c0 + tt) * ldv + static_cast<int64_t>(h) * Dv + j0 + jj)
                  : 0.0f;
    }
    if (tid < kC) {
      bs[tid] = tid < nt ? ld(g + static_cast<int64_t>(c0 + tid) * ldg + h) : 0.0f;
      bet[tid] = tid < nt ? ld(beta + static_cast<int64_t>(c0 + tid) * ldb + h) : 0.0f;
    }
    __syncthreads();
    // 2. prefix sums of g (warp 0, two 32-element halves) and l2 norms (zero rows stay zero)
    if (w == 0) {
      float x0 = bs[lane], x1 = bs[lane + 32];
#pragma unroll
      for (int off = 1; off < 32; off <<= 1) {
        const float y0 = __shfl_up_sync(0xffffffffu, x0, off), y1 = __shfl_up_sync(0xffffffffu, x1, off);
        if (lane >= off) {
          x0 += y0;
          x1 += y1;
        }
      }
      x1 += __shfl_sync(0xffffffffu, x0, 31);
      const float blast = __shfl_sync(0xffffffffu, x1, 31);
      bs[lane] = x0;
      bs[lane + 32] = x1;
      ed[lane] = expf(blast - x0);
      ed[lane + 32] = expf(blast - x1);
    }
    for (int vec = w; vec < 2 * kC; vec += 8) {
      float* p = vec < kC ? Qs + vec * KP : Ks + (vec - kC) * KP;
      float ss = 0.0f;
      for (int i = lane; i < Dk; i += 32) ss += p[i] * p[i];
      ss = warp_sum(ss);
      const float r = 1.0f / sqrtf(ss + 1e-6f) * (vec < kC ? qscale : 1.0f);
      for (int i = lane; i < Dk; i += 32) p[i] *= r;
    }
    __syncthreads();
    // 3. one pass over Dk: K̂K̂ᵀ, Q̂K̂ᵀ (rows rg+16a, columns cg+16b) and K̂S0, Q̂S0 (rows rg+16a, columns cg+16c)
    float oacc[4][2];
    {
      float kk[4][4] = {}, qk[4][4] = {}, ka[4][2] = {}, qa[4][2] = {};
#pragma unroll 2
      for (int i = 0; i < Dk; ++i) {
        float kt[4], qt[4], kc[4];
#pragma unroll
        for (int a = 0; a < 4; ++a) {
          kt[a] = Ks[(rg + 16 * a) * KP + i];
          qt[a] = Qs[(rg + 16 * a) * KP + i];
          kc[a] = Ks[(cg + 16 * a) * KP + i];
        }
        const float s0 = Ss[i * kTile + cg], s1 = Ss[i * kTile + cg + 16];
#pragma unroll
        for (int a = 0; a < 4; ++a) {
#pragma unroll
          for (int b = 0; b <= a; ++b) {  // b > a: columns cg+16b > rows rg+16a, above the diagonal (masked)
            kk[a][b] = fmaf(kt[a], kc[b], kk[a][b]);
            qk[a][b] = fmaf(qt[a], kc[b], qk[a][b]);
          }
          ka[a][0] = fmaf(kt[a], s0, ka[a][0]);
          ka[a][1] = fmaf(kt[a], s1, ka[a][1]);
          qa[a][0] = fmaf(qt[a], s0, qa[a][0]);
          qa[a][1] = fmaf(qt[a], s1, qa[a][1]);
        }
      }
#pragma unroll
      for (int a = 0; a < 4; ++a) {
        const int t = rg + 16 * a;
        const float bt = bs[t];
#pragma unroll
        for (int b = 0; b < 4; ++b) {
          const int sc = cg + 16 * b;
          const float dd = sc <= t ? expf(bt - bs[sc]) : 0.0f;  // masked before exp: no overflow
          if (sc < t) Ms[t * kLP + sc] = bet[t] * dd * kk[a][b];  // L, lower triangle
          if (sc <= t) Ms[sc * kLP + t] = dd * qk[a][b];          // P, transposed into the upper triangle
        }
        const float gt = expf(bt);
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          float* r = Rs + t * kTile + cg + 16 * c;
          *r = bet[t] * (*r - gt * ka[a][c]);
          oacc[a][c] = gt * qa[a][c];
        }
      }
    }
    __syncthreads();
    // 4. (I + L) D = R by blocks of 16 rows. 4i: warps 0-3 invert the four unit lower-triangular 16×16 diagonal
    // blocks of (I + L) (lane j < 16 solves (I + L_bb) x = e_j, fully unrolled in registers). 4b: per row block b,
    // R_b −= L_{b,<b} D_{<b} (b > 0), then D_b = (I + L_bb)⁻¹ R_b; thread = one row × 2 columns. The sequential
    // part is 4 short steps with 2 barriers each instead of C dependent rows.
    if (w < 4 && lane < 16) {
      const float* Lb = Ms + (16 * w) * kLP + 16 * w;  // diagonal block w
      float xv[16];
#pragma unroll
      for (int r = 0; r < 16; ++r) {
        float acc = r == lane ? 1.0f : 0.0f;
#pragma unroll
        for (int u = 0; u < r; ++u) acc = fmaf(-Lb[r * kLP + u], xv[u], acc);
        xv[r] = acc;
        Ai[(16 * w + r) * kAP + lane] = acc;
      }
    }
    __syncthreads();
    for (int b = 0; 16 * b < nt; ++b) {  // uniform bound: rows past nt are never read by step 5
      const int t = 16 * b + rg;
      if (b > 0) {
        const float* Lr = Ms + t * kLP;
        float a0 = 0.0f, a1 = 0.0f;
        for (int sc = 0; sc < 16 * b; ++sc) {
          a0 = fmaf(Lr[sc], Ds[sc * kTile + cg], a0);
          a1 = fmaf(Lr[sc], Ds[sc * kTile + cg + 16], a1);
        }
        Rs[t * kTile + cg] -= a0;
        Rs[t * kTile + cg + 16] -= a1;
        __syncthreads();
      }
      const float* Ar = Ai + t * kAP;
      float d0 = 0.0f, d1 = 0.0f;
#pragma unroll
      for (int u = 0; u < 16; ++u) {
        d0 = fmaf(Ar[u], Rs[(16 * b + u) * kTile + cg], d0);
        d1 = fmaf(Ar[u], Rs[(16 * b + u) * kTile + cg + 16], d1);
      }
      Ds[t * kTile + cg] = d0;
      Ds[t * kTile + cg + 16] = d1;
      __syncthreads();
    }
    // 5a. O += P D (P is zero above the diagonal and D zero past nt)
    for (int sc = 0; sc < nt; ++sc) {
      const float d0 = Ds[sc * kTile + cg], d1 = Ds[sc * kTile + cg + 16];
#pragma unroll
      for (int a = 0; a < 4; ++a) {
        const int t = rg + 16 * a;
        const float p = sc <= t ? Ms[sc * kLP + t] : 0.0f;
        oacc[a][0] = fmaf(p, d0, oacc[a][0]);
        oacc[a][1] = fmaf(p, d1, oacc[a][1]);
      }
    }
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      const int t = rg + 16 * a;
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int j = j0 + cg + 16 * c;
        if (t < nt && j < Dv)
          st(o + static_cast<int64_t>(c0 + t) * ldo + static_cast<int64_t>(h) * Dv + j, oacc[a][c]);
      }
    }
    // 5b. S = γ_last S + K̂ᵀ (e^{b_last − b} D): rows rg + 16a (a < Dk/16), columns cg, cg + 16; each thread owns its
    // entries (S0 was last read in step 3, before the barrier)
    chunk_state_update(Ss, Ks, KP, Ds, ed, nt, Dk, rg, cg, expf(bs[kC - 1]));
    __syncthreads();  // the next chunk overwrites K̂, Q̂, R; step 3 reads the new S
  }
  for (int e = tid; e < Dk * kTile; e += blockDim.x) {
    const int i = e / kTile, jj = e % kTile;
    if (j0 + jj < Dv) Sp[static_cast<int64_t>(i) * Dv + j0 + jj] = Ss[e];
  }
}

template <typename T>
cudaError_t launch(const void* q, int64_t ldq, const void* k, int64_t ldk, const void* v, int64_t ldv, const void* g,
                   int64_t ldg, const void* beta, int64_t ldb, void* o, int64_t ldo, float* state_pool,
                   const int32_t* state_slot, const int32_t* cu, int64_t S, int64_t Hk, int64_t Hv, int64_t Dk,
                   int64_t Dv, cudaStream_t stream) {
  // raise the dynamic shared-memory limit once, for the largest Dk (not a stream operation; later calls, e.g.
  // inside a graph capture, skip it)
  static bool configured = false;
  if (!configured) {
    const cudaError_t e = cudaFuncSetAttribute(gdn_chunk_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(smem_floats(128) * sizeof(float)));
    if (e != cudaSuccess) return e;
    configured = true;
  }
  const dim3 grid(static_cast<unsigned>(S), static_cast<unsigned>(Hv), static_cast<unsigned>((Dv + kTile - 1) / kTile));
  const size_t smem = smem_floats(static_cast<int>(Dk)) * sizeof(float);
  gdn_chunk_kernel<T><<<grid, 256, smem, stream>>>(
      static_cast<const T*>(q), ldq, static_cast<const T*>(k), ldk, static_cast<const T*>(v), ldv,
      static_cast<const T*>(g), ldg, static_cast<const T*>(beta), ldb, static_cast<T*>(o), ldo, state_pool,
      state_slot, cu, static_cast<int>(Hk), static_cast<int>(Hv), static_cast<int>(Dk), static_cast<int>(Dv));
  return cudaGetLastError();
}
}  // namespace

cudaError_t gated_delta_rule_chunked_legacy(DType dt, const void* q, int64_t ldq, const void* k, int64_t ldk, const void* v,
                                            int64_t ldv, const void* g, int64_t ldg, const void* beta, int64_t ldb, void* o,
                                     int64_t ldo, float* state_pool, const int32_t* state_slot,
                                     const int32_t* cu_seqlens, int64_t S, int64_t T, int64_t Hk, int64_t Hv,
                                     int64_t Dk, int64_t Dv, cudaStream_t stream) {
  if (S == 0 || T == 0) return cudaSuccess;
  if (Hk <= 0 || Hv % Hk != 0 || Dk <= 0 || Dk > 128 || Dv <= 0) return cudaErrorInvalidValue;
  if (dt == DType::f32)
    return launch<float>(q, ldq, k, ldk, v, ldv, g, ldg, beta, ldb, o, ldo, state_pool, state_slot, cu_seqlens, S, Hk,
                         Hv, Dk, Dv, stream);
  return launch<__nv_bfloat16>(q, ldq, k, ldk, v, ldv, g, ldg, beta, ldb, o, ldo, state_pool, state_slot, cu_seqlens,
                               S, Hk, Hv, Dk, Dv, stream);
}

}  // namespace hylora::cuda
