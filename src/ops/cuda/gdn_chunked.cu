// Chunked gated delta rule (math and workspace in gdn_chunked.h): three kernels, C = 64-token chunks, 256 threads.
//   gdn_prep_kernel   (chunk, value head)             l2-normalise k̂ (written once per key head), b = in-chunk cumsum
//                     of g, L = β e^{b_t−b_s} K̂K̂ᵀ (strictly lower), X = (I + L)⁻¹ (16×16 diagonal blocks inverted
//                     by substitution, then four block rows), W = X diag(βγ) K̂, U = X diag(β) V
//   gdn_state_kernel  (sequence, value head, 32 Dv)  walks the chunks: stores S (the chunk's starting state),
//                     D = U − W S (overwrites U), S ← γ_last S + K̂ᵀ diag(e^{b_last−b}) D; the next chunk's W, K̂, U, b
//                     stream into a second buffer with cp.async while this one computes
//   gdn_out_kernel    (chunk, value head, 64 Dv)    q̂ (normalised here), P = e^{b_t−b_s} Q̂K̂ᵀ (s ≤ t),
//                     O = diag(γ) Q̂ S + P D
// Bulk loads of the parallel kernels keep 16 loads in flight per thread (fill_tile); the state pass copies with
// cp.async (16-byte when Dk, Dv are multiples of 4). Shared memory at Dk = Dv = 128: prep 109 KB, out 108 KB (two
// blocks per SM), state 181 KB (one).
// The matrix products run on tensor cores in 3xTF32 (tf32x3.cuh: fp32-level accuracy); the normalisation, decays and
// the 16×16 triangular inverses on CUDA cores in fp32. Operands are zero-padded in shared memory to multiples of 8 in
// Dk and Dv, so any Dk, Dv ≤ 128 work. Decays use e^{b_t − b_s} with s ≤ t only (every exponent ≤ 0 for g ≤ 0: no
// overflow; e^{b} underflowing to 0 is the exact limit).
#include "ops/cuda/chunk_state.cuh"
#include "ops/cuda/common.cuh"
#include "ops/cuda/gdn_chunked.h"
#include "ops/cuda/tf32x3.cuh"

namespace hylora::cuda {
using namespace detail;

namespace {
constexpr int kC = 64;        // chunk length (tokens)
static_assert(kC == 64, "chunk_prefix_sum64 (chunk_state.cuh) scans chunks of 64 tokens");
constexpr int kThreads = 256;
constexpr int kLd = kC + 4;   // row stride of [C, C] matrices (≡ 4 mod 32: conflict-free A-fragment rows)
constexpr int kAP = 17;       // row stride of the inverted 16×16 diagonal blocks
constexpr int kStTile = 32;   // Dv columns per state-pass block
constexpr int kStLd = kStTile + 8;  // ≡ 8 mod 32: conflict-free B-fragment rows
constexpr int kOutTile = 64;  // Dv columns per output block
constexpr int kOutLd = kOutTile + 8;

bool g_enabled = true;

__host__ __device__ constexpr int pad8(int n) { return (n + 7) & ~7; }
__host__ __device__ constexpr int pad16(int n) { return (n + 15) & ~15; }
__host__ __device__ constexpr int row_ld(int n) { return pad8(n) + 8; }  // ≡ 8 mod 32 for n = 64, 128

// Workspace pieces (gdn_chunked.h). Token rows are the call's rows t ∈ [0, T); chunk ids are find_tile_bounded's.
struct Workspace {
  float* W;   // [T, Hv, Dk]  X diag(βγ) K̂
  float* U;   // [T, Hv, Dv]  X diag(β) V, overwritten by D in the state pass
  float* Kn;  // [T, Hk, Dk]  k̂
  float* B;   // [T, Hv]      b_t, the cumulative log decay within the chunk
  float* Sc;  // [NCB, Hv, Dk, Dv]  the state at the start of each chunk
};

size_t up4(size_t n) { return (n + 3) & ~size_t{3}; }

Workspace carve(float* ws, int64_t S, int64_t T, int64_t Hk, int64_t Hv, int64_t Dk, int64_t Dv) {
  Workspace w;
  w.W = ws;
  w.U = w.W + up4(T * Hv * Dk);
  w.Kn = w.U + up4(T * Hv * Dv);
  w.B = w.Kn + up4(T * Hk * Dk);
  w.Sc = w.B + up4(T * Hv);
  (void)S;
  return w;
}

__host__ __device__ constexpr int prep_smem_floats(int Dk, int Dv) {
  return kC * row_ld(Dk) + kC * row_ld(Dv) + 2 * kC * kLd + kC * kAP + 2 * kC;
}
__host__ __device__ constexpr int state_smem_floats(int Dk) {
  return 2 * (2 * kC * row_ld(Dk) + kC * kStLd + kC) + pad16(Dk) * kStLd;
}
__host__ __device__ constexpr int out_smem_floats(int Dk) {
  return kC * row_ld(Dk) + (kC * row_ld(Dk) > (pad8(Dk) + kC) * kOutLd ? kC * row_ld(Dk) : (pad8(Dk) + kC) * kOutLd) +
         kC * kLd + kC;
}

__device__ __forceinline__ void cp_async4(float* dst, const float* src, bool valid) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 4 : 0) : "memory");
}

// dst[r·ld + c] = get(r, c) for r < rows, c < cols: 16 loads in flight per thread before any is stored (a plain
// load-then-store loop waits one memory latency per element)
template <typename Get>
__device__ __forceinline__ void fill_tile(float* dst, int ld, int rows, int cols, Get get) {
  constexpr int kU = 16;
  const int n = rows * cols;
  for (int base = threadIdx.x; base < n; base += kU * kThreads) {
    float r[kU];
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int e = base + u * kThreads;
      r[u] = e < n ? get(e / cols, e % cols) : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int e = base + u * kThreads;
      if (e < n) dst[(e / cols) * ld + e % cols] = r[u];
    }
  }
}

// rows [0, C) of `p` (stride ld, first n columns): x ← x · scale / sqrt(Σx² + 1e-6), one warp per row
__device__ __forceinline__ void l2_normalise_rows(float* p, int ld, int n, float scale) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  for (int row = w; row < kC; row += kThreads / 32) {
    float* r = p + row * ld;
    float ss = 0.0f;
    for (int i = lane; i < n; i += 32) ss += r[i] * r[i];
    ss = warp_sum(ss);
    const float f = scale / sqrtf(ss + 1e-6f);
    for (int i = lane; i < n; i += 32) r[i] *= f;
  }
}

// ---- 1. intra-chunk: k̂, b, X = (I + L)⁻¹, W, U ------------------------------------------------------------------
template <typename T>
__global__ void __launch_bounds__(kThreads, 2) gdn_prep_kernel(
    const T* __restrict__ k, int64_t ldk, const T* __restrict__ v, int64_t ldv, const T* __restrict__ g, int64_t ldg,
    const T* __restrict__ beta, int64_t ldb, const int32_t* __restrict__ state_slot, const int32_t* __restrict__ cu,
    int S, int Hk, int Hv, int Dk, int Dv, Workspace ws) {
  int s, ch;
  if (!find_tile_bounded(cu, S, kC, blockIdx.x, &s, &ch)) return;
  if (state_slot[s] < 0) return;  // padding: nothing of it is read later
  extern __shared__ float sm[];
  const int Dkp = pad8(Dk), Dvp = pad8(Dv), ldK = row_ld(Dk), ldV = row_ld(Dv);
  float* Ks = sm;              // [C, ldK] k̂, then diag(βγ) k̂
  float* Vs = Ks + kC * ldK;   // [C, ldV] v, then diag(β) v
  float* Ls = Vs + kC * ldV;   // [C, kLd] L (strictly lower)
  float* Xs = Ls + kC * kLd;   // [C, kLd] X = (I + L)⁻¹
  float* Ai = Xs + kC * kLd;   // [C, kAP] inverses of the 16×16 diagonal blocks of I + L (row 16b + r)
  float* bs = Ai + kC * kAP;   // [C] b
  float* bet = bs + kC;        // [C] β
  const int h = blockIdx.y, G = Hv / Hk, kh = h / G;
  const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
  const int c0 = cu[s] + ch * kC, nt = min(kC, cu[s + 1] - c0);
  const int64_t r0 = c0 - cu[0];  // workspace row of the chunk's first token
  // load (rows past nt and padding columns are zero; g = 0 and β = 0 there: they change nothing)
  fill_tile(Ks, ldK, kC, Dkp, [&](int tt, int i) {
    return tt < nt && i < Dk ? ld(k + static_cast<int64_t>(c0 + tt) * ldk + kh * Dk + i) : 0.0f;
  });
  fill_tile(Vs, ldV, kC, Dvp, [&](int tt, int i) {
    return tt < nt && i < Dv ? ld(v + static_cast<int64_t>(c0 + tt) * ldv + h * Dv + i) : 0.0f;
  });
  if (tid < kC) {
    bs[tid] = tid < nt ? ld(g + static_cast<int64_t>(c0 + tid) * ldg + h) : 0.0f;
    bet[tid] = tid < nt ? ld(beta + static_cast<int64_t>(c0 + tid) * ldb + h) : 0.0f;
  }
  __syncthreads();
  if (w == 0) {  // inclusive prefix sum of g (two 32-element halves)
    float x0, x1;
    chunk_prefix_sum64(bs, x0, x1);
    bs[lane] = x0;
    bs[lane + 32] = x1;
    if (lane < nt) ws.B[(r0 + lane) * Hv + h] = x0;
    if (lane + 32 < nt) ws.B[(r0 + lane + 32) * Hv + h] = x1;
  }
  l2_normalise_rows(Ks, ldK, Dk, 1.0f);
  __syncthreads();
  if (h % G == 0)  // one value head per key head writes k̂
    for (int e = tid; e < nt * Dk; e += kThreads) {
      const int tt = e / Dk, i = e % Dk;
      ws.Kn[((r0 + tt) * Hk + kh) * Dk + i] = Ks[tt * ldK + i];
    }
  // L = β_t e^{b_t − b_s} k̂_t·k̂_s (s < t): warp = 16 rows × 32 columns of K̂K̂ᵀ
  {
    const int m0 = 16 * (w & 3), n0 = 32 * (w >> 2);
    float acc[4][4] = {};
    warp_mma_3xtf32<4>(acc, Ks + m0 * ldK, ldK, 1, Ks + n0 * ldK, 1, ldK, Dkp);
#pragma unroll
    for (int f = 0; f < 4; ++f)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = m0 + acc_row(e), c = n0 + acc_col(f, e);
        Ls[r * kLd + c] = c < r ? bet[r] * expf(bs[r] - bs[c]) * acc[f][e] : 0.0f;  // masked before exp
      }
  }
  __syncthreads();
  // X = (I + L)⁻¹. Warps 0-3: lane j < 16 solves (I + L_bb) x = e_j for diagonal block b = warp (in registers).
  if (w < 4 && lane < 16) {
    const float* Lb = Ls + (16 * w) * kLd + 16 * w;
    float xv[16];
#pragma unroll
    for (int r = 0; r < 16; ++r) {
      float acc = r == lane ? 1.0f : 0.0f;
#pragma unroll
      for (int u = 0; u < r; ++u) acc = fmaf(-Lb[r * kLd + u], xv[u], acc);
      xv[r] = acc;
      Ai[(16 * w + r) * kAP + lane] = acc;
    }
  }
  __syncthreads();
  // Then block row b of (I + L) X = I: X_b = Ai_b (I_b − L_{b,<b} X_{<b}); thread = row 16b + r, columns cq + 16m.
  {
    const int r = tid >> 4, cq = tid & 15;
    for (int b = 0; b < 4; ++b) {
      const int t = 16 * b + r;
      float R[4];
#pragma unroll
      for (int m = 0; m < 4; ++m) R[m] = t == cq + 16 * m ? 1.0f : 0.0f;
      for (int j = 0; j < 16 * b; ++j) {
        const float l = Ls[t * kLd + j];
#pragma unroll
        for (int m = 0; m < 4; ++m) R[m] = fmaf(-l, Xs[j * kLd + cq + 16 * m], R[m]);
      }
#pragma unroll
      for (int m = 0; m < 4; ++m) Xs[t * kLd + cq + 16 * m] = R[m];
      __syncthreads();
      float x[4] = {};
      for (int u = 0; u < 16; ++u) {
        const float a = Ai[t * kAP + u];
#pragma unroll
        for (int m = 0; m < 4; ++m) x[m] = fmaf(a, Xs[(16 * b + u) * kLd + cq + 16 * m], x[m]);
      }
      __syncthreads();
#pragma unroll
      for (int m = 0; m < 4; ++m) Xs[t * kLd + cq + 16 * m] = x[m];
      __syncthreads();
    }
  }
  // right-hand sides: diag(β γ) K̂ and diag(β) V
  for (int e = tid; e < kC * Dkp; e += kThreads) {
    const int tt = e / Dkp, i = e % Dkp;
    Ks[tt * ldK + i] *= bet[tt] * expf(bs[tt]);
  }
  for (int e = tid; e < kC * Dvp; e += kThreads) {
    const int tt = e / Dvp, i = e % Dvp;
    Vs[tt * ldV + i] *= bet[tt];
  }
  __syncthreads();
  // W = X diag(βγ) K̂, U = X diag(β) V: warp = 16 rows × 32-column slices. M: the scaled K̂ or V [kC, Mp] (row
  // stride ldm, columns ≥ width zero); out: ws.W or ws.U, [token, Hv, width].
  const int m0 = 16 * (w & 3);
  auto x_times = [&](const float* M, int ldm, int Mp, int width, float* out) {
    for (int n0 = 32 * (w >> 2); n0 < Mp; n0 += 64) {
      const int nf = min(4, (Mp - n0) / 8);
      float acc[4][4] = {};
      warp_mma_3xtf32<4>(acc, Xs + m0 * kLd, kLd, 1, M + n0, ldm, 1, kC, nf);
#pragma unroll
      for (int f = 0; f < 4; ++f)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = m0 + acc_row(e), c = n0 + acc_col(f, e);
          if (f < nf && r < nt && c < width) out[((r0 + r) * Hv + h) * width + c] = acc[f][e];
        }
    }
  };
  x_times(Ks, ldK, Dkp, Dk, ws.W);
  x_times(Vs, ldV, Dvp, Dv, ws.U);
}

// ---- 2. state pass: sequential over the chunks of a sequence ----------------------------------------------------
__global__ void __launch_bounds__(kThreads, 1) gdn_state_kernel(Workspace ws, float* state_pool,
                                                                const int32_t* __restrict__ state_slot,
                                                                const int32_t* __restrict__ cu, int Hk, int Hv, int Dk,
                                                                int Dv) {
  const int s = blockIdx.x, h = blockIdx.y, j0 = blockIdx.z * kStTile;
  const int slot = state_slot[s];
  const int t0 = cu[s], t1 = cu[s + 1];
  if (slot < 0 || t1 <= t0) return;  // whole block: no barrier skipped by part of it
  extern __shared__ float sm[];
  const int Dkp = pad8(Dk), ldK = row_ld(Dk), kh = h / (Hv / Hk);
  const int buf_floats = 2 * kC * ldK + kC * kStLd + kC;
  float* Ss = sm + 2 * buf_floats;  // [pad16(Dk), kStLd] the state tile (rows ≥ Dk, columns past Dv stay 0)
  const int tid = threadIdx.x, w = tid >> 5;
  const int nch = (t1 - t0 + kC - 1) / kC;
  // 16-byte copies need 16-byte aligned rows: Dk, Dv multiples of 4 (the workspace pieces start 16-byte aligned when
  // the workspace does)
  const bool vec = Dk % 4 == 0 && Dv % 4 == 0 && reinterpret_cast<uintptr_t>(ws.W) % 16 == 0;
  const int64_t cid0 = (t0 - cu[0]) / kC + s;  // find_tile_bounded's id of the sequence's first chunk
  float* Sp = state_pool + (static_cast<int64_t>(slot) * Hv + h) * Dk * Dv;
  fill_tile(Ss, kStLd, pad16(Dk), kStTile, [&](int i, int jj) {
    return i < Dk && j0 + jj < Dv ? Sp[static_cast<int64_t>(i) * Dv + j0 + jj] : 0.0f;
  });
  // chunk c's W [C, ldK], K̂ [C, ldK], U tile [C, kStLd], b [C] into buffer c & 1 (zero-filled past the end)
  auto load = [&](int c) {
    float* Wb = sm + (c & 1) * buf_floats;
    float* Kb = Wb + kC * ldK;
    float* Ub = Kb + kC * ldK;
    float* bb = Ub + kC * kStLd;
    const int64_t r0 = t0 - cu[0] + static_cast<int64_t>(c) * kC;
    const int nt = min(kC, t1 - t0 - c * kC);
    if (vec) {  // 16-byte copies: Dk, Dv multiples of 4, so a 4-float group is all valid or all padding
      const int q4 = Dkp / 4;
      for (int e = tid; e < kC * q4; e += kThreads) {
        const int tt = e / q4, i = 4 * (e % q4);
        const bool ok = tt < nt && i < Dk;
        cp_async16(Wb + tt * ldK + i, ok ? ws.W + ((r0 + tt) * Hv + h) * Dk + i : ws.W, ok);
        cp_async16(Kb + tt * ldK + i, ok ? ws.Kn + ((r0 + tt) * Hk + kh) * Dk + i : ws.Kn, ok);
      }
      for (int e = tid; e < kC * kStTile / 4; e += kThreads) {
        const int tt = e / (kStTile / 4), jj = 4 * (e % (kStTile / 4));
        const bool ok = tt < nt && j0 + jj < Dv;
        cp_async16(Ub + tt * kStLd + jj, ok ? ws.U + ((r0 + tt) * Hv + h) * Dv + j0 + jj : ws.U, ok);
      }
    } else {
      for (int e = tid; e < kC * Dkp; e += kThreads) {
        const int tt = e / Dkp, i = e % Dkp;
        const bool ok = tt < nt && i < Dk;
        cp_async4(Wb + tt * ldK + i, ok ? ws.W + ((r0 + tt) * Hv + h) * Dk + i : ws.W, ok);
        cp_async4(Kb + tt * ldK + i, ok ? ws.Kn + ((r0 + tt) * Hk + kh) * Dk + i : ws.Kn, ok);
      }
      for (int e = tid; e < kC * kStTile; e += kThreads) {
        const int tt = e / kStTile, jj = e % kStTile;
        const bool ok = tt < nt && j0 + jj < Dv;
        cp_async4(Ub + tt * kStLd + jj, ok ? ws.U + ((r0 + tt) * Hv + h) * Dv + j0 + jj : ws.U, ok);
      }
    }
    if (tid < kC) cp_async4(bb + tid, tid < nt ? ws.B + (r0 + tid) * Hv + h : ws.B, tid < nt);
  };
  load(0);
  cp_async_commit();
  for (int c = 0; c < nch; ++c) {
    if (c + 1 < nch) load(c + 1);  // into the other buffer, free since the barrier that ended chunk c − 1
    cp_async_commit();             // (possibly empty: wait_group 1 then means "chunk c has landed")
    cp_async_wait<1>();
    __syncthreads();
    const float* Wb = sm + (c & 1) * buf_floats;
    const float* Kb = Wb + kC * ldK;
    float* Ub = const_cast<float*>(Kb) + kC * ldK;
    const float* bb = Ub + kC * kStLd;
    const int64_t r0 = t0 - cu[0] + static_cast<int64_t>(c) * kC;
    const int nt = min(kC, t1 - t0 - c * kC);
    // the chunk's starting state, for the output kernel
    float* Sc = ws.Sc + ((cid0 + c) * Hv + h) * Dk * Dv;
    for (int e = tid; e < Dk * kStTile; e += kThreads) {
      const int i = e / kStTile, jj = e % kStTile;
      if (j0 + jj < Dv) Sc[static_cast<int64_t>(i) * Dv + j0 + jj] = Ss[i * kStLd + jj];
    }
    // D = U − W S: warp = 16 rows × 16 columns; D → workspace (over U), e^{b_last − b_t} D → Ub
    const float blast = bb[nt - 1];
    {
      const int m0 = 16 * (w & 3), n0 = 16 * (w >> 2);
      float acc[2][4] = {};
      warp_mma_3xtf32<2>(acc, Wb + m0 * ldK, ldK, 1, Ss + n0, kStLd, 1, Dkp);
#pragma unroll
      for (int f = 0; f < 2; ++f)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = m0 + acc_row(e), c2 = n0 + acc_col(f, e);
          const float d = Ub[r * kStLd + c2] - acc[f][e];
          if (r < nt && j0 + c2 < Dv) ws.U[((r0 + r) * Hv + h) * Dv + j0 + c2] = d;
          Ub[r * kStLd + c2] = r < nt ? d * expf(blast - bb[r]) : 0.0f;
        }
    }
    __syncthreads();
    // S ← γ_last S + K̂ᵀ (e ⊙ D): warp = 16 state rows × 32 columns (rows past Dkp read K̂'s padding columns
    // and Ss's zero rows and are not stored)
    {
      const int m0 = 16 * w;
      if (m0 < Dkp) {
        const float gl = expf(blast);
        float acc[4][4];
#pragma unroll
        for (int f = 0; f < 4; ++f)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[f][e] = gl * Ss[(m0 + acc_row(e)) * kStLd + acc_col(f, e)];
        warp_mma_3xtf32<4>(acc, Kb + m0, 1, ldK, Ub, kStLd, 1, kC);
#pragma unroll
        for (int f = 0; f < 4; ++f)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int r = m0 + acc_row(e), c2 = acc_col(f, e);
            if (r < Dk && j0 + c2 < Dv) Ss[r * kStLd + c2] = acc[f][e];
          }
      }
    }
    __syncthreads();  // S complete; buffer c & 1 free for chunk c + 2
  }
  for (int e = tid; e < Dk * kStTile; e += kThreads) {
    const int i = e / kStTile, jj = e % kStTile;
    if (j0 + jj < Dv) Sp[static_cast<int64_t>(i) * Dv + j0 + jj] = Ss[i * kStLd + jj];
  }
}

// ---- 3. output: O = diag(γ) Q̂ S + P D, parallel over (chunk, value head, 64 Dv columns) -----------------------
template <typename T>
__global__ void __launch_bounds__(kThreads, 2) gdn_out_kernel(const T* __restrict__ q, int64_t ldq, T* __restrict__ o,
                                                              int64_t ldo, const int32_t* __restrict__ state_slot,
                                                              const int32_t* __restrict__ cu, int S, int Hk, int Hv,
                                                              int Dk, int Dv, Workspace ws) {
  int s, ch;
  if (!find_tile_bounded(cu, S, kC, blockIdx.x, &s, &ch)) return;
  if (state_slot[s] < 0) return;
  extern __shared__ float sm[];
  const int Dkp = pad8(Dk), ldK = row_ld(Dk);
  float* Qs = sm;                   // [C, ldK] q̂
  float* Ks = Qs + kC * ldK;        // [C, ldK] k̂; after P: the S tile [Dkp, kOutLd] and the D tile [C, kOutLd]
  float* St = Ks;
  float* Dt = St + Dkp * kOutLd;
  const int un = kC * ldK > (Dkp + kC) * kOutLd ? kC * ldK : (Dkp + kC) * kOutLd;
  float* Ps = Ks + un;              // [C, kLd] P
  float* bs = Ps + kC * kLd;        // [C] b
  const int h = blockIdx.y, kh = h / (Hv / Hk), j0 = blockIdx.z * kOutTile;
  const int tid = threadIdx.x, w = tid >> 5;
  const int c0 = cu[s] + ch * kC, nt = min(kC, cu[s + 1] - c0);
  const int64_t r0 = c0 - cu[0], cid = blockIdx.x;
  fill_tile(Qs, ldK, kC, Dkp, [&](int tt, int i) {
    return tt < nt && i < Dk ? ld(q + static_cast<int64_t>(c0 + tt) * ldq + kh * Dk + i) : 0.0f;
  });
  fill_tile(Ks, ldK, kC, Dkp,
            [&](int tt, int i) { return tt < nt && i < Dk ? ws.Kn[((r0 + tt) * Hk + kh) * Dk + i] : 0.0f; });
  if (tid < kC) bs[tid] = tid < nt ? ws.B[(r0 + tid) * Hv + h] : 0.0f;
  __syncthreads();
  l2_normalise_rows(Qs, ldK, Dk, rsqrtf(static_cast<float>(Dk)));
  __syncthreads();
  // P[t, s] = e^{b_t − b_s} q̂_t·k̂_s (s ≤ t < nt): warp = 16 rows × 32 columns
  {
    const int m0 = 16 * (w & 3), n0 = 32 * (w >> 2);
    float acc[4][4] = {};
    warp_mma_3xtf32<4>(acc, Qs + m0 * ldK, ldK, 1, Ks + n0 * ldK, 1, ldK, Dkp);
#pragma unroll
    for (int f = 0; f < 4; ++f)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = m0 + acc_row(e), c = n0 + acc_col(f, e);
        Ps[r * kLd + c] = c <= r && r < nt ? expf(bs[r] - bs[c]) * acc[f][e] : 0.0f;
      }
  }
  __syncthreads();  // K̂ dead: its space takes the S and D tiles
  const float* Sc = ws.Sc + (cid * Hv + h) * Dk * Dv;
  fill_tile(St, kOutLd, Dkp, kOutTile, [&](int i, int jj) {
    return i < Dk && j0 + jj < Dv ? Sc[static_cast<int64_t>(i) * Dv + j0 + jj] : 0.0f;
  });
  fill_tile(Dt, kOutLd, kC, kOutTile, [&](int tt, int jj) {
    return tt < nt && j0 + jj < Dv ? ws.U[((r0 + tt) * Hv + h) * Dv + j0 + jj] : 0.0f;
  });
  __syncthreads();
  const int m0 = 16 * (w & 3), n0 = 32 * (w >> 2);
  const int nf = min(4, (min(kOutTile, pad8(Dv) - j0) - n0) / 8);
  if (nf <= 0) return;  // no barrier follows
  float acc[4][4] = {};
  warp_mma_3xtf32<4>(acc, Qs + m0 * ldK, ldK, 1, St + n0, kOutLd, 1, Dkp, nf);
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const float gm = expf(bs[m0 + acc_row(e)]);
#pragma unroll
    for (int f = 0; f < 4; ++f) acc[f][e] *= gm;
  }
  warp_mma_3xtf32<4>(acc, Ps + m0 * kLd, kLd, 1, Dt + n0, kOutLd, 1, kC, nf);
#pragma unroll
  for (int f = 0; f < 4; ++f)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int r = m0 + acc_row(e), c = j0 + n0 + acc_col(f, e);
      if (f < nf && r < nt && c < Dv)
        st(o + static_cast<int64_t>(c0 + r) * ldo + static_cast<int64_t>(h) * Dv + c, acc[f][e]);
    }
}

template <typename K>
cudaError_t allow_smem(K kernel, int floats) {
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              floats * static_cast<int>(sizeof(float)));
}

template <typename T>
cudaError_t launch(const void* q, int64_t ldq, const void* k, int64_t ldk, const void* v, int64_t ldv, const void* g,
                   int64_t ldg, const void* beta, int64_t ldb, void* o, int64_t ldo, float* state_pool,
                   const int32_t* state_slot, const int32_t* cu, int64_t S, int64_t T_, int64_t Hk, int64_t Hv,
                   int64_t Dk, int64_t Dv, float* workspace, cudaStream_t stream) {
  // raise the dynamic shared-memory limits once, for the largest Dk, Dv (not stream operations; later calls, e.g.
  // inside a graph capture, skip them)
  static bool configured = false;
  if (!configured) {
    cudaError_t e = allow_smem(gdn_prep_kernel<T>, prep_smem_floats(128, 128));
    if (e == cudaSuccess) e = allow_smem(gdn_state_kernel, state_smem_floats(128));
    if (e == cudaSuccess) e = allow_smem(gdn_out_kernel<T>, out_smem_floats(128));
    if (e != cudaSuccess) return e;
    configured = true;
  }
  const Workspace ws = carve(workspace, S, T_, Hk, Hv, Dk, Dv);
  const int64_t ncb = T_ / kC + S;  // find_tile_bounded's bound on the chunk ids
  const int s = static_cast<int>(S), hk = static_cast<int>(Hk), hv = static_cast<int>(Hv), dk = static_cast<int>(Dk),
            dv = static_cast<int>(Dv);
  const size_t f4 = sizeof(float);
  gdn_prep_kernel<T><<<dim3(static_cast<unsigned>(ncb), hv), kThreads, prep_smem_floats(dk, dv) * f4, stream>>>(
      static_cast<const T*>(k), ldk, static_cast<const T*>(v), ldv, static_cast<const T*>(g), ldg,
      static_cast<const T*>(beta), ldb, state_slot, cu, s, hk, hv, dk, dv, ws);
  gdn_state_kernel<<<dim3(s, hv, (dv + kStTile - 1) / kStTile), kThreads, state_smem_floats(dk) * f4, stream>>>(
      ws, state_pool, state_slot, cu, hk, hv, dk, dv);
  gdn_out_kernel<T><<<dim3(static_cast<unsigned>(ncb), hv, (dv + kOutTile - 1) / kOutTile), kThreads,
                      out_smem_floats(dk) * f4, stream>>>(static_cast<const T*>(q), ldq, static_cast<T*>(o), ldo,
                                                           state_slot, cu, s, hk, hv, dk, dv, ws);
  return cudaGetLastError();
}
}  // namespace


void set_gdn_chunked_enabled(bool on) { g_enabled = on; }
bool gdn_chunked_enabled() { return g_enabled; }

size_t gated_delta_rule_chunked_workspace_floats(int64_t S, int64_t T, int64_t Hk, int64_t Hv, int64_t Dk,
                                                 int64_t Dv) {
  if (S <= 0 || T <= 0) return 0;
  return up4(T * Hv * Dk) + up4(T * Hv * Dv) + up4(T * Hk * Dk) + up4(T * Hv) +
         static_cast<size_t>(T / kC + S) * Hv * Dk * Dv;
}

cudaError_t gated_delta_rule_chunked(DType dt, const void* q, int64_t ldq, const void* k, int64_t ldk, const void* v,
                                     int64_t ldv, const void* g, int64_t ldg, const void* beta, int64_t ldb, void* o,
                                     int64_t ldo, float* state_pool, const int32_t* state_slot,
                                     const int32_t* cu_seqlens, int64_t S, int64_t T, int64_t Hk, int64_t Hv,
                                     int64_t Dk, int64_t Dv, float* workspace, cudaStream_t stream) {
  if (S == 0 || T == 0) return cudaSuccess;
  if (Hk <= 0 || Hv % Hk != 0 || Dk <= 0 || Dk > 128 || Dv <= 0 || Dv > 128 || workspace == nullptr)
    return cudaErrorInvalidValue;
  if (dt == DType::f32)
    return launch<float>(q, ldq, k, ldk, v, ldv, g, ldg, beta, ldb, o, ldo, state_pool, state_slot, cu_seqlens, S, T,
                         Hk, Hv, Dk, Dv, workspace, stream);
  return launch<__nv_bfloat16>(q, ldq, k, ldk, v, ldv, g, ldg, beta, ldb, o, ldo, state_pool, state_slot, cu_seqlens,
                               S, T, Hk, Hv, Dk, Dv, workspace, stream);
}

}  // namespace hylora::cuda
