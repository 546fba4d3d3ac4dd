// Chunked Mamba2 scan (math in ssd_chunked.h); the same block structure as gdn_chunked.cu without the triangular
// solve. Block = (sequence, head, 32 channels of hd), 256 threads; the block walks its sequence chunk by chunk
// (C = 64) with the state tile held transposed, Sᵀ [N, 32], in shared memory. Per chunk, between barriers:
//   1 load B, C rows [C, N], the x tile [C, 32] (scaled by Δ after the barrier), Δ and the log decays Δ·A (rows past
//     the sequence end: zero, log decay 0)
//   2 warp 0 scans the log decays into b and e^{b_last − b}
//   3 one pass over N: C Bᵀ [C, C] (thread = 4×4) → P with decay ratios, and C S0ᵀ [C, 32] (thread = 4×2) → registers
//   4 Y = e^{b} C S0ᵀ + P X + D x → output rows; Sᵀ = e^{b_last} Sᵀ + Bᵀ (e^{b_last − b} X)
// fp32 CUDA-core math for both activation dtypes.
#include "ops/cuda/common.cuh"
#include "ops/cuda/chunk_state.cuh"
#include "ops/cuda/ssd_chunked.h"

namespace hylora::cuda {
using namespace detail;

namespace {
constexpr int kC = 64;     // chunk length (tokens)
static_assert(kC == 64, "chunk_prefix_sum64 (chunk_state.cuh) scans chunks of 64 tokens");
constexpr int kTile = 32;  // hd channels per block
static_assert(kTile == 32, "chunk_state_update (chunk_state.cuh) works on 32-column tiles");
constexpr int kLP = kC + 1;

__host__ __device__ constexpr int smem_floats(int N) {
  return 2 * kC * (N + 1) + kC * kTile + kC * kLP + N * kTile + 2 * kC;  // 105.25 KiB at N = 128: 2 blocks/SM
}

// On by default: on CUDA cores the chunked form does about the sequential kernel's work per token, yet it measured
// 2.0× faster at 128 heads (1×8k, H200) and 0.94× at 32, so ssm_scan picks it only with ≥ 64 heads·sequences; the
// checks' timing compares both.
bool g_enabled = true;

__device__ __forceinline__ float softplus20(float x) { return x > 20.0f ? x : log1pf(expf(x)); }  // as ssm_kernel

template <typename T>
__global__ void __launch_bounds__(256, 2) ssd_chunk_kernel(
    const T* __restrict__ x, int64_t ldx, const T* __restrict__ dtr, int64_t lddt, const T* __restrict__ Bm,
    int64_t ldB, const T* __restrict__ Cm, int64_t ldC, const float* __restrict__ A, const float* __restrict__ Dd,
    const float* __restrict__ dt_bias, float dt_min, T* __restrict__ y, int64_t ldy, float* state_pool,
    const int32_t* __restrict__ state_slot, const int32_t* __restrict__ cu, int nh, int hd, int G, int N) {
  extern __shared__ float sm[];
  const int NP = N + 1;  // odd row stride: column walks over rows hit distinct banks
  float* Bs = sm;                // [C, NP] B rows
  float* Cs = Bs + kC * NP;      // [C, NP] C rows
  float* Xd = Cs + kC * NP;      // [C, 32] x tile, then Δ·x (the D term reads x again from global memory)
  float* Ps = Xd + kC * kTile;   // [C, kLP]
  float* Ss = Ps + kC * kLP;     // [N, 32] state tile, transposed
  float* bs = Ss + N * kTile;    // [C] cumulative log decay in the chunk
  float* ed = bs + kC;           // [C] e^{b_last − b_s}

  const int s = blockIdx.x, h = blockIdx.y, p0 = blockIdx.z * kTile;
  const int slot = state_slot[s];
  if (slot < 0) return;  // whole block
  const int gi = h / (nh / G);
  const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
  const int rg = tid >> 4, cg = tid & 15;  // output tiles: rows rg + 16a, columns cg + 16c
  float* Sp = state_pool + (static_cast<int64_t>(slot) * nh + h) * hd * N;  // [hd, N]
  for (int e = tid; e < N * kTile; e += blockDim.x) {  // n fastest: coalesced pool reads
    const int pp = e / N, n = e % N;
    Ss[n * kTile + pp] = p0 + pp < hd ? Sp[static_cast<int64_t>(p0 + pp) * N + n] : 0.0f;
  }
  const float a_h = A[h], d_h = Dd[h], bias = dt_bias ? dt_bias[h] : 0.0f;
  const int t0 = cu[s], t1 = cu[s + 1];
  for (int c0 = t0; c0 < t1; c0 += kC) {
    const int nt = min(kC, t1 - c0);
    // 1. load; Δ first (warp 0 → bs), the x tile waits for the barrier below to read it
    if (tid < kC) {
      float delta = 0.0f;
      if (tid < nt) delta = fmaxf(softplus20(ld(dtr + static_cast<int64_t>(c0 + tid) * lddt + h) + bias), dt_min);
      bs[tid] = delta * a_h;
      ed[tid] = delta;  // Δ until step 2
    }
    for (int e = tid; e < kC * N; e += blockDim.x) {
      const int tt = e / N, n = e % N;
      float bv = 0.0f, cv = 0.0f;
      if (tt < nt) {
        bv = ld(Bm + static_cast<int64_t>(c0 + tt) * ldB + static_cast<int64_t>(gi) * N + n);
        cv = ld(Cm + static_cast<int64_t>(c0 + tt) * ldC + static_cast<int64_t>(gi) * N + n);
      }
      Bs[tt * NP + n] = bv;
      Cs[tt * NP + n] = cv;
    }
    for (int e = tid; e < kC * kTile; e += blockDim.x) {
      const int tt = e / kTile, pp = e % kTile;
      Xd[e] = (tt < nt && p0 + pp < hd)
                  ? ld(x + static_cast<int64_t>(c0 + tt) * ldx + static_cast<int64_t>(h) * hd + p0 + pp)
                  : 0.0f;
    }
    __syncthreads();
    // 2. Δ·x, and prefix sums of the log decays (warp 0, two 32-element halves)
    for (int e = tid; e < kC * kTile; e += blockDim.x) Xd[e] *= ed[e / kTile];
    __syncthreads();  // ed is overwritten below
    if (w == 0) {
      float x0, x1;
      chunk_prefix_sum64(bs, x0, x1);
      const float blast = __shfl_sync(0xffffffffu, x1, 31);
      bs[lane] = x0;
      bs[lane + 32] = x1;
      ed[lane] = expf(blast - x0);
      ed[lane + 32] = expf(blast - x1);
    }
    __syncthreads();
    // 3. one pass over N: C Bᵀ (rows rg+16a, columns cg+16b) and C S0ᵀ (rows rg+16a, channels cg+16c)
    float oacc[4][2];
    {
      float cb[4][4] = {}, ca[4][2] = {};
#pragma unroll 2
      for (int n = 0; n < N; ++n) {
        float ct[4], bc[4];
#pragma unroll
        for (int a = 0; a < 4; ++a) {
          ct[a] = Cs[(rg + 16 * a) * NP + n];
          bc[a] = Bs[(cg + 16 * a) * NP + n];
        }
        const float s0 = Ss[n * kTile + cg], s1 = Ss[n * kTile + cg + 16];
#pragma unroll
        for (int a = 0; a < 4; ++a) {
#pragma unroll
          for (int b = 0; b <= a; ++b) cb[a][b] = fmaf(ct[a], bc[b], cb[a][b]);  // b > a: above the diagonal
          ca[a][0] = fmaf(ct[a], s0, ca[a][0]);
          ca[a][1] = fmaf(ct[a], s1, ca[a][1]);
        }
      }
#pragma unroll
      for (int a = 0; a < 4; ++a) {
        const int t = rg + 16 * a;
        const float bt = bs[t];
#pragma unroll
        for (int b = 0; b < 4; ++b) {
          const int sc = cg + 16 * b;
          Ps[t * kLP + sc] = sc <= t ? expf(bt - bs[sc]) * cb[a][b] : 0.0f;  // masked before exp: no overflow
        }
        const float gt = expf(bt);
        oacc[a][0] = gt * ca[a][0];
        oacc[a][1] = gt * ca[a][1];
      }
    }
    __syncthreads();
    // 4a. Y = O + P X + D x
    for (int sc = 0; sc < nt; ++sc) {
      const float d0 = Xd[sc * kTile + cg], d1 = Xd[sc * kTile + cg + 16];
#pragma unroll
      for (int a = 0; a < 4; ++a) {
        const float p = Ps[(rg + 16 * a) * kLP + sc];
        oacc[a][0] = fmaf(p, d0, oacc[a][0]);
        oacc[a][1] = fmaf(p, d1, oacc[a][1]);
      }
    }
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      const int t = rg + 16 * a;
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int pp = cg + 16 * c;
        if (t < nt && p0 + pp < hd) {
          const float xv = ld(x + static_cast<int64_t>(c0 + t) * ldx + static_cast<int64_t>(h) * hd + p0 + pp);
          st(y + static_cast<int64_t>(c0 + t) * ldy + static_cast<int64_t>(h) * hd + p0 + pp, oacc[a][c] + d_h * xv);
        }
      }
    }
    // 4b. Sᵀ = e^{b_last} Sᵀ + Bᵀ (e^{b_last − b} X): rows n = rg + 16a (a < N/16), channels cg, cg + 16; each thread
    // owns its entries (S0 was last read in step 3, before the barrier)
    chunk_state_update(Ss, Bs, NP, Xd, ed, nt, N, rg, cg, expf(bs[kC - 1]));
    __syncthreads();  // the next chunk overwrites B, C, X, bs; step 3 reads the new S
  }
  for (int e = tid; e < N * kTile; e += blockDim.x) {
    const int pp = e / N, n = e % N;
    if (p0 + pp < hd) Sp[static_cast<int64_t>(p0 + pp) * N + n] = Ss[n * kTile + pp];
  }
}

template <typename T>
cudaError_t launch(const void* x, int64_t ldx, const void* dtr, int64_t lddt, const void* B, int64_t ldB, const void* C,
                   int64_t ldC, const float* A, const float* D, const float* dt_bias, float dt_min, void* y,
                   int64_t ldy, float* state_pool, const int32_t* state_slot, const int32_t* cu, int64_t S,
                   int64_t nh, int64_t hd, int64_t G, int64_t N, cudaStream_t stream) {
  // raise the dynamic shared-memory limit once, for the largest N (not a stream operation; later calls, e.g. inside
  // a graph capture, skip it)
  static bool configured = false;
  if (!configured) {
    const cudaError_t e = cudaFuncSetAttribute(ssd_chunk_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(smem_floats(128) * sizeof(float)));
    if (e != cudaSuccess) return e;
    configured = true;
  }
  const dim3 grid(static_cast<unsigned>(S), static_cast<unsigned>(nh), static_cast<unsigned>((hd + kTile - 1) / kTile));
  const size_t smem = smem_floats(static_cast<int>(N)) * sizeof(float);
  ssd_chunk_kernel<T><<<grid, 256, smem, stream>>>(
      static_cast<const T*>(x), ldx, static_cast<const T*>(dtr), lddt, static_cast<const T*>(B), ldB,
      static_cast<const T*>(C), ldC, A, D, dt_bias, dt_min, static_cast<T*>(y), ldy, state_pool, state_slot, cu,
      static_cast<int>(nh), static_cast<int>(hd), static_cast<int>(G), static_cast<int>(N));
  return cudaGetLastError();
}
}  // namespace

void set_ssd_chunked_enabled(bool on) { g_enabled = on; }
bool ssd_chunked_enabled() { return g_enabled; }

cudaError_t ssm_scan_chunked(DType dt, const void* x, int64_t ldx, const void* dtr, int64_t lddt, const void* B,
                             int64_t ldB, const void* C, int64_t ldC, const float* A, const float* D,
                             const float* dt_bias, float dt_min, void* y, int64_t ldy, float* state_pool,
                             const int32_t* state_slot, const int32_t* cu_seqlens, int64_t S, int64_t T, int64_t nh,
                             int64_t hd, int64_t G, int64_t N, cudaStream_t stream) {
  if (S == 0 || T == 0) return cudaSuccess;
  if (G <= 0 || nh % G != 0 || N <= 0 || N > 128 || hd <= 0) return cudaErrorInvalidValue;
  if (dt == DType::f32)
    return launch<float>(x, ldx, dtr, lddt, B, ldB, C, ldC, A, D, dt_bias, dt_min, y, ldy, state_pool, state_slot,
                         cu_seqlens, S, nh, hd, G, N, stream);
  return launch<__nv_bfloat16>(x, ldx, dtr, lddt, B, ldB, C, ldC, A, D, dt_bias, dt_min, y, ldy, state_pool,
                               state_slot, cu_seqlens, S, nh, hd, G, N, stream);
}

}  // namespace hylora::cuda
