// The engine's expert GEMM (math, shapes and regimes in expert_gemm.h).
// decode: expert_gemv_kernel, 4 warps × 4 output columns per block; each lane streams 16-byte chunks of its 4 weight
//   rows along K and multiplies them with up to 8 of the expert's fp32 rows (x is tiny and stays in L1/L2), then a
//   warp reduction per (column, row). Blocks map to experts either directly (P >= E: most experts are busy) or to the
//   j-th non-empty expert (P < E: the grid holds only min(P, E) experts, so a batch-1 step launches 8 experts' worth
//   of blocks, not 256).
// prefill: expert_gemm_tc_kernel, 64 rows × 128 columns per block, 8 warps of 32×32 (WMMA 16×16×16 bf16, fp32
//   accumulation), K slices of 32 double-buffered in shared memory with the next slice prefetched into registers;
//   the fp32 x tile is rounded to bf16 as it is stored to shared memory. Tiles come from the device offsets through
//   find_tile_bounded over P/64 + E row tiles in grid.y (graph-safe), the column tiles in grid.x.
#include "ops/cuda/expert_gemm.h"

#include <mma.h>

#include "ops/cuda/common.cuh"
#include "ops/cuda/extra.h"
#include "ops/cuda/moe.h"

namespace hylora::cuda {
using namespace detail;

namespace {
constexpr int kDecWarpCols = 4, kDecCols = 4 * kDecWarpCols, kDecRows = 8;

// The j-th non-empty expert in ascending order, or -1 when fewer than j + 1 are non-empty. Called by every thread of
// the block (blockDim a multiple of 32; barriers inside); one pass of ⌈E / blockDim⌉ reads of the offsets.
__device__ int nth_nonempty_expert(const int32_t* __restrict__ off, int E, int j) {
  __shared__ int s_found, s_base, s_cnt[32];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  if (threadIdx.x == 0) {
    s_found = -1;
    s_base = 0;
  }
  __syncthreads();
  for (int g0 = 0; g0 < E; g0 += blockDim.x) {
    const int g = g0 + threadIdx.x;
    const bool ne = g < E && off[g + 1] > off[g];
    const unsigned m = __ballot_sync(0xffffffffu, ne);
    if (lane == 0) s_cnt[w] = __popc(m);
    __syncthreads();
    int rank = s_base + __popc(m & ((1u << lane) - 1u));
    for (int i = 0; i < w; ++i) rank += s_cnt[i];
    if (ne && rank == j) s_found = g;
    __syncthreads();
    if (threadIdx.x == 0)
      for (int i = 0; i < nw; ++i) s_base += s_cnt[i];
    __syncthreads();
    if (s_found >= 0 || s_base > j) break;  // uniform: shared values read after the barrier
  }
  return s_found;
}

// grid.x = (number of expert slots) × col_tiles; expert slot = blockIdx.x / col_tiles is the expert itself when
// `direct`, else the slot-th non-empty expert. Needs K % V == 0 (V = 16 / sizeof(TW)), ldx % 4 == 0, 16-byte aligned
// xs and W.
template <typename TW>
__global__ void __launch_bounds__(128) expert_gemv_kernel(const float* __restrict__ xs, int64_t ldx,
                                                          const TW* __restrict__ W, const int32_t* __restrict__ off,
                                                          int E, bool direct, float* __restrict__ ys, int64_t ldy,
                                                          int64_t N, int64_t K, int col_tiles) {
  constexpr int V = 16 / sizeof(TW);
  const int slot = blockIdx.x / col_tiles;
  const int ex = direct ? slot : nth_nonempty_expert(off, E, slot);
  if (ex < 0) return;
  const int rb = off[ex], re = off[ex + 1];
  const int64_t n0 = static_cast<int64_t>(blockIdx.x % col_tiles) * kDecCols + (threadIdx.x >> 5) * kDecWarpCols;
  if (rb >= re || n0 >= N) return;  // uniform per warp; no barrier below
  const int lane = threadIdx.x & 31;
  const TW* wrow[kDecWarpCols];
  bool has[kDecWarpCols];
#pragma unroll
  for (int j = 0; j < kDecWarpCols; ++j) {
    has[j] = n0 + j < N;
    wrow[j] = W + (static_cast<int64_t>(ex) * N + (has[j] ? n0 + j : n0)) * K;  // a valid row even past N
  }
  for (int r0 = rb; r0 < re; r0 += kDecRows) {
    const int nr = min(kDecRows, re - r0);
    float acc[kDecWarpCols][kDecRows];
#pragma unroll
    for (int j = 0; j < kDecWarpCols; ++j)
#pragma unroll
      for (int r = 0; r < kDecRows; ++r) acc[j][r] = 0.0f;
    // unrolled twice: 8 independent 16-byte weight loads per lane in flight (the kernel is latency x bandwidth bound)
#pragma unroll 2
    for (int64_t k = lane * V; k < K; k += 32 * V) {
      float w[kDecWarpCols][V];
#pragma unroll
      for (int j = 0; j < kDecWarpCols; ++j) ld16(wrow[j] + k, w[j]);
#pragma unroll
      for (int r = 0; r < kDecRows; ++r) {
        if (r >= nr) break;
        const float* xr = xs + static_cast<int64_t>(r0 + r) * ldx + k;
        float xv[V];
#pragma unroll
        for (int q = 0; q < V / 4; ++q) ld16(xr + 4 * q, xv + 4 * q);
#pragma unroll
        for (int j = 0; j < kDecWarpCols; ++j)
#pragma unroll
          for (int v = 0; v < V; ++v) acc[j][r] = fmaf(w[j][v], xv[v], acc[j][r]);
      }
    }
#pragma unroll
    for (int r = 0; r < kDecRows; ++r) {
      if (r >= nr) break;
#pragma unroll
      for (int j = 0; j < kDecWarpCols; ++j) {
        const float s = warp_sum(acc[j][r]);
        if (lane == 0 && has[j]) ys[static_cast<int64_t>(r0 + r) * ldy + n0 + j] = s;
      }
    }
  }
}

constexpr int kTM = 64, kTN = 128, kTK = 32, kTP = kTK + 8;  // tile rows, columns, K slice, padded smem row (bf16)
constexpr int kAB = 2 * (kTM + kTN) * kTP * 2;                // double-buffered A and B tiles, bytes
constexpr int kCB = kTM * (kTN + 4) * 4;                      // fp32 epilogue tile, bytes (aliases A and B)
constexpr int kSmem = kAB > kCB ? kAB : kCB;

// Needs K % 8 == 0, ldx % 4 == 0, 16-byte aligned xs and W.
__global__ void __launch_bounds__(256) expert_gemm_tc_kernel(const float* __restrict__ xs, int64_t ldx,
                                                             const __nv_bfloat16* __restrict__ W,
                                                             const int32_t* __restrict__ off, int E,
                                                             float* __restrict__ ys, int64_t ldy, int64_t N,
                                                             int64_t K) {
  namespace wm = nvcuda::wmma;
  __shared__ __align__(128) unsigned char smem[kSmem];
  auto As = reinterpret_cast<__nv_bfloat16(*)[kTM][kTP]>(smem);  // [2][kTM][kTP]
  auto Bs = reinterpret_cast<__nv_bfloat16(*)[kTN][kTP]>(smem + 2 * kTM * kTP * 2);  // [2][kTN][kTP]
  auto Cs = reinterpret_cast<float(*)[kTN + 4]>(smem);                                // [kTM][kTN + 4]
  int ex, tile;
  if (!find_tile_bounded(off, E, kTM, blockIdx.y, &ex, &tile)) return;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kTN;
  const int r0 = off[ex] + tile * kTM;
  const int nrows = min(kTM, off[ex + 1] - r0);
  const __nv_bfloat16* We = W + static_cast<int64_t>(ex) * N * K;
  const int tid = threadIdx.x, w = tid >> 5, wr = (w >> 2) * 32, wc = (w & 3) * 32;

  // A slice: 64 rows × 32 fp32 = 512 float4; B slice: 128 rows × 32 bf16 = 512 uint4; 2 of each per thread.
  float4 ra[2];
  uint4 rb[2];
  auto load = [&](int64_t k0) {
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int e = tid + 256 * u, r = e >> 3, c = (e & 7) * 4;
      ra[u] = (r < nrows && k0 + c < K) ? *reinterpret_cast<const float4*>(xs + (r0 + r) * ldx + k0 + c)
                                        : make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int e = tid + 256 * u, r = e >> 2, c = (e & 3) * 8;
      rb[u] = (n0 + r < N && k0 + c < K) ? *reinterpret_cast<const uint4*>(We + (n0 + r) * K + k0 + c)
                                         : make_uint4(0, 0, 0, 0);
    }
  };
  auto store = [&](int buf) {
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int e = tid + 256 * u, r = e >> 3, c = (e & 7) * 4;
      __nv_bfloat162 h[2] = {__floats2bfloat162_rn(ra[u].x, ra[u].y), __floats2bfloat162_rn(ra[u].z, ra[u].w)};
      *reinterpret_cast<uint2*>(&As[buf][r][c]) = *reinterpret_cast<const uint2*>(h);
    }
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int e = tid + 256 * u, r = e >> 2, c = (e & 3) * 8;
      *reinterpret_cast<uint4*>(&Bs[buf][r][c]) = rb[u];
    }
  };

  wm::fragment<wm::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wm::fill_fragment(acc[i][j], 0.0f);
  const int64_t nk = (K + kTK - 1) / kTK;
  load(0);
  store(0);
  __syncthreads();
  for (int64_t kt = 0; kt < nk; ++kt) {
    const int cur = static_cast<int>(kt & 1);
    if (kt + 1 < nk) load((kt + 1) * kTK);  // in flight while the tensor cores work on `cur`
#pragma unroll
    for (int kk = 0; kk < kTK; kk += 16) {
      wm::fragment<wm::matrix_a, 16, 16, 16, __nv_bfloat16, wm::row_major> a[2];
      wm::fragment<wm::matrix_b, 16, 16, 16, __nv_bfloat16, wm::col_major> b[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) wm::load_matrix_sync(a[i], &As[cur][wr + 16 * i][kk], kTP);
#pragma unroll
      for (int j = 0; j < 2; ++j) wm::load_matrix_sync(b[j], &Bs[cur][wc + 16 * j][kk], kTP);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wm::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    // `cur ^ 1` was last read in the previous iteration, before its closing barrier.
    if (kt + 1 < nk) store(cur ^ 1);
    __syncthreads();
  }
  // Every read of A and B is behind the last barrier: the epilogue tile may reuse their memory.
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wm::store_matrix_sync(&Cs[wr + 16 * i][wc + 16 * j], acc[i][j], kTN + 4, wm::mem_row_major);
  __syncthreads();
  for (int e = tid; e < kTM * kTN; e += 256) {
    const int r = e / kTN, c = e % kTN;
    if (r < nrows && n0 + c < N) ys[static_cast<int64_t>(r0 + r) * ldy + n0 + c] = Cs[r][c];
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
}  // namespace

int expert_gemm_path(const float* xs, int64_t ldx, DType w_dtype, const void* W, int64_t E, int64_t P, int64_t K) {
  const int64_t V = w_dtype == DType::f32 ? 4 : 8;
  const bool vec = K % V == 0 && ldx % 4 == 0 && aligned16(xs) && aligned16(W);
  if (P <= 4 * E) return vec ? 1 : 0;
  return (w_dtype == DType::f32 || vec) ? 2 : 0;  // the fp32 tiling has no alignment needs
}

cudaError_t expert_gemm(const float* xs, int64_t ldx, DType w_dtype, const void* W, const int32_t* offsets, int64_t E,
                        float* ys, int64_t ldy, int64_t P, int64_t N, int64_t K, cudaStream_t stream) {
  if (P == 0 || N == 0) return cudaSuccess;
  const int path = expert_gemm_path(xs, ldx, w_dtype, W, E, P, K);
  const int Ei = static_cast<int>(E);
  if (path == 1) {
    const int col_tiles = static_cast<int>((N + kDecCols - 1) / kDecCols);
    const bool direct = P >= E;
    const unsigned grid = static_cast<unsigned>((direct ? E : P) * col_tiles);
    if (w_dtype == DType::f32)
      expert_gemv_kernel<float><<<grid, 128, 0, stream>>>(xs, ldx, static_cast<const float*>(W), offsets, Ei, direct,
                                                          ys, ldy, N, K, col_tiles);
    else
      expert_gemv_kernel<__nv_bfloat16><<<grid, 128, 0, stream>>>(
          xs, ldx, static_cast<const __nv_bfloat16*>(W), offsets, Ei, direct, ys, ldy, N, K, col_tiles);
    return cudaGetLastError();
  }
  if (path == 2 && w_dtype == DType::f32)
    return moe_grouped_gemm(DType::f32, xs, ldx, nullptr, 0, offsets, E, W, ys, ldy, P, N, K, stream);
  if (path == 2) {
    // Column tiles vary fastest: the blocks of one row tile run together and read its x rows from HBM once.
    const int64_t row_tiles = (P + kTM - 1) / kTM + E;
    if (row_tiles > 65535) return extra::expert_gemm(xs, ldx, w_dtype, W, offsets, E, ys, ldy, P, N, K, stream);
    const dim3 grid(static_cast<unsigned>((N + kTN - 1) / kTN), static_cast<unsigned>(row_tiles));
    expert_gemm_tc_kernel<<<grid, 256, 0, stream>>>(xs, ldx, static_cast<const __nv_bfloat16*>(W), offsets, Ei, ys,
                                                    ldy, N, K);
    return cudaGetLastError();
  }
  return extra::expert_gemm(xs, ldx, w_dtype, W, offsets, E, ys, ldy, P, N, K, stream);
}

}  // namespace hylora::cuda
