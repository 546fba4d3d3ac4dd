// Multi-LoRA shrink / expand (math in lora.h).
// SGMV shrink (many rows per segment): a block computes a 64-row × 16-rank tile of s for one (segment, slice, rank
// group) from x rows (gathered through perm) and A rows staged in shared memory in K-chunks of 32; each thread keeps
// 4 rows of one rank column. Decode shrink (segments of one or a few rows): a block per (4-row tile, slice, 4 rank
// columns) whose 8 warps split `in`; each thread reads 16-byte vectors of the 4 x rows and 4 A rows and keeps 4×4
// fp32 sums, reduced by warp shuffles and across warps in shared memory. SGMV expand: a block computes a 64-row ×
// 128-column tile of one slice's output for one segment, ranks in chunks of 16 staged in shared memory, 32 fp32 sums
// a thread, then y += sum (one rounding in bf16). Decode expand: 16 rows × 128 columns, a thread per output column
// streaming its own B row. Columns/ranks ≥ the adapter's rank are skipped (zero by contract).
#include "ops/cuda/common.cuh"
#include "ops/cuda/lora.h"

namespace hylora::cuda {
using namespace detail;

namespace {
constexpr int kTM = 16;   // rows per decode-expand tile

__device__ __forceinline__ int slice_rank(const LoraSegments& seg, int slot, int n, int k, int max_r) {
  if (!seg.rank) return max_r;
  const int r = seg.rank[slot * n + k];
  return r < 0 ? 0 : (r > max_r ? max_r : r);
}

constexpr int kSR = 64;  // rows per SGMV tile (shrink and expand)
constexpr int kSK = 32;  // K chunk of the SGMV shrink
constexpr int kSC = 16;  // rank columns per SGMV-shrink block and per SGMV-expand rank chunk

// SGMV shrink: block = (64-row tile of one segment, slice, 16 rank columns); thread (c = t % 16, rows 4·(t / 16) + q,
// q < 4) keeps 4 fp32 sums. x rows (through perm) and the 16 A rows are staged in K-chunks of 32 (coalesced 128-byte
// row pieces), read back as broadcasts (x) and conflict-free strided reads (A, stride 33). Why this shape: the old
// tile (16 rows × all ranks, A staged at kLoraMaxRank rows = 33 KB of shared memory, half the lanes idle at rank 16)
// took 1.1 ms per slice at 8192 rows on an H200; x is re-read per slice and rank group from L2 only.
template <typename T>
__global__ void __launch_bounds__(256) shrink_sgmv_kernel(const T* __restrict__ x, int64_t ldx, int64_t in,
                                                          LoraSlices sl, int max_r, LoraSegments seg,
                                                          float* __restrict__ s) {
  __shared__ float Xs[kSR][kSK + 1];
  __shared__ float As[kSC][kSK + 1];
  __shared__ int64_t xrow[kSR];
  int g, tile;
  if (!find_tile_bounded(seg.seg_indptr, static_cast<int>(seg.G), kSR, blockIdx.x, &g, &tile)) return;
  const int k = blockIdx.y, r0 = blockIdx.z * kSC;
  const int slot = seg.seg_slot[g];
  const int R = slice_rank(seg, slot, sl.n, k, max_r);
  const int nr = max(0, min(kSC, R - r0));  // live rank columns of this block (block-uniform)
  const int row0 = seg.seg_indptr[g] + tile * kSR;
  const int nrows = min(kSR, seg.seg_indptr[g + 1] - row0);
  const int c = threadIdx.x % kSC, rg = threadIdx.x / kSC;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (nr > 0) {
    if (threadIdx.x < kSR) xrow[threadIdx.x] = threadIdx.x < nrows ? seg.perm[row0 + threadIdx.x] : -1;
    const T* A = static_cast<const T*>(sl.A[k]) + (static_cast<int64_t>(slot) * max_r + r0) * in;
    __syncthreads();
    for (int64_t k0 = 0; k0 < in; k0 += kSK) {
      for (int e = threadIdx.x; e < kSR * kSK; e += blockDim.x) {
        const int r = e / kSK, cc = e % kSK;
        Xs[r][cc] = (xrow[r] >= 0 && k0 + cc < in) ? ld(x + xrow[r] * ldx + k0 + cc) : 0.0f;
      }
      for (int e = threadIdx.x; e < kSC * kSK; e += blockDim.x) {
        const int r = e / kSK, cc = e % kSK;
        As[r][cc] = (r < nr && k0 + cc < in) ? ld(A + static_cast<int64_t>(r) * in + k0 + cc) : 0.0f;
      }
      __syncthreads();
#pragma unroll 8
      for (int kk = 0; kk < kSK; ++kk) {
        const float a = As[c][kk];
#pragma unroll
        for (int q = 0; q < 4; ++q) acc[q] += Xs[rg * 4 + q][kk] * a;
      }
      __syncthreads();
    }
  }
  // Columns at or past the rank are written as zeros (s is [rows, slices, max_r] and read as such).
  if (r0 + c >= max_r) return;
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const int row = rg * 4 + q;
    if (row < nrows) s[(static_cast<int64_t>(row0 + row) * sl.n + k) * max_r + r0 + c] = c < nr ? acc[q] : 0.0f;
  }
}

constexpr int kDR = 4;     // ranks per decode-shrink block
constexpr int kDRows = 4;  // rows per decode-shrink tile

// Decode shrink: block = (tile of ≤ 4 rows of one segment, slice, 4 rank columns), 256 threads split `in`; each
// thread keeps 4 rows × 4 ranks of fp32 sums over its 16-byte vectors (scalars when unaligned), then warp sums and a
// cross-warp sum in shared memory. Why: the old grid was one block per (segment, slice, 8 ranks) looping over the
// segment's rows, i.e. 16-48 blocks at batch 64 with 8 adapters of rank 16 — a handful of SMs, each a long chain of
// dependent load rounds over `in` (26 µs). Row tiles (find_tile_bounded, grid ⌈T_lora/4⌉ + G) and 4-rank groups give
// ~100-400 blocks; x rows are re-read per rank group from L2 (x is ≤ 1 MB). Loads are unconditional (row and rank
// pointers clamped to live ones, unrolled by 2) so each thread has 8-16 independent 16-byte loads in flight; the
// extra sums are dropped at the store. A rows at or past the adapter's rank are never read.
template <typename T>
__global__ void __launch_bounds__(256) shrink_decode_kernel(const T* __restrict__ x, int64_t ldx, int64_t in,
                                                            LoraSlices sl, int max_r, LoraSegments seg,
                                                            float* __restrict__ s, bool vec) {
  constexpr int V = 16 / sizeof(T);
  __shared__ float red[8][kDRows * kDR];
  int g, tile;
  if (!find_tile_bounded(seg.seg_indptr, static_cast<int>(seg.G), kDRows, blockIdx.x, &g, &tile)) return;
  const int k = blockIdx.y, r0 = blockIdx.z * kDR;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int slot = seg.seg_slot[g];
  const int R = slice_rank(seg, slot, sl.n, k, max_r);
  const int nr = max(0, min(kDR, R - r0));  // live rank columns of this block
  const int row0 = seg.seg_indptr[g] + tile * kDRows;
  const int nrow = min(kDRows, seg.seg_indptr[g + 1] - row0);  // ≥ 1 (find_tile_bounded skips spare tiles)
  if (nr == 0) {  // rank columns past the adapter's rank (block-uniform, before the barrier): zeros only
    if (threadIdx.x < kDRows * kDR) {
      const int q = threadIdx.x / kDR, c = threadIdx.x % kDR;
      if (q < nrow && r0 + c < max_r) s[(static_cast<int64_t>(row0 + q) * sl.n + k) * max_r + r0 + c] = 0.0f;
    }
    return;
  }
  float acc[kDRows][kDR];
#pragma unroll
  for (int q = 0; q < kDRows; ++q)
#pragma unroll
    for (int c = 0; c < kDR; ++c) acc[q][c] = 0.0f;
  {
    const T* xr[kDRows];
    const T* ar[kDR];
#pragma unroll
    for (int q = 0; q < kDRows; ++q) xr[q] = x + static_cast<int64_t>(seg.perm[row0 + min(q, nrow - 1)]) * ldx;
#pragma unroll
    for (int c = 0; c < kDR; ++c)
      ar[c] = static_cast<const T*>(sl.A[k]) + (static_cast<int64_t>(slot) * max_r + r0 + min(c, nr - 1)) * in;
    if (vec) {
#pragma unroll 2
      for (int64_t j = static_cast<int64_t>(threadIdx.x) * V; j < in; j += 256 * V) {
        float xv[kDRows][V], av[kDR][V];
#pragma unroll
        for (int q = 0; q < kDRows; ++q) ld16(xr[q] + j, xv[q]);
#pragma unroll
        for (int c = 0; c < kDR; ++c) ld16(ar[c] + j, av[c]);
#pragma unroll
        for (int q = 0; q < kDRows; ++q)
#pragma unroll
          for (int c = 0; c < kDR; ++c)
#pragma unroll
            for (int e = 0; e < V; ++e) acc[q][c] += xv[q][e] * av[c][e];
      }
    } else {
#pragma unroll 4
      for (int64_t j = threadIdx.x; j < in; j += 256) {
        float xv[kDRows], av[kDR];
#pragma unroll
        for (int q = 0; q < kDRows; ++q) xv[q] = ld(xr[q] + j);
#pragma unroll
        for (int c = 0; c < kDR; ++c) av[c] = ld(ar[c] + j);
#pragma unroll
        for (int q = 0; q < kDRows; ++q)
#pragma unroll
          for (int c = 0; c < kDR; ++c) acc[q][c] += xv[q] * av[c];
      }
    }
  }
#pragma unroll
  for (int q = 0; q < kDRows; ++q)
#pragma unroll
    for (int c = 0; c < kDR; ++c) {
      const float v = warp_sum(acc[q][c]);
      if (lane == 0) red[warp][q * kDR + c] = v;
    }
  __syncthreads();
  if (threadIdx.x < kDRows * kDR) {
    const int q = threadIdx.x / kDR, c = threadIdx.x % kDR;
    if (q < nrow && r0 + c < max_r) {
      float v = 0.0f;
#pragma unroll
      for (int w = 0; w < 8; ++w) v += red[w][q * kDR + c];
      s[(static_cast<int64_t>(row0 + q) * sl.n + k) * max_r + r0 + c] = c < nr ? v : 0.0f;
    }
  }
}

constexpr int kSN = 128;  // output columns per SGMV-expand tile

// SGMV expand: block = (64-row tile of one segment, slice, 128 output columns); warp w owns rows 8w..8w+7, lane l the
// columns l + 32j (j < 4), 32 fp32 sums a thread. Ranks go in chunks of 16: the tile's s rows and a 128 × 16 piece
// of B are staged, then each rank is 8 broadcast reads of s and 4 conflict-free reads of B (stride 17) for 32 FMAs.
// y += sum is one coalesced 128-byte read-modify-write per (row, j). Why: the old 16 × 64 tile staged B at
// kLoraMaxRank columns (41 KB of shared memory a block) and re-read s and y in small pieces: 0.8 ms per 8192 × 8192
// slice where the y traffic alone needs ~0.13 ms.
template <typename T>
__global__ void __launch_bounds__(256) expand_kernel(const float* __restrict__ s, LoraSlices sl, int max_r,
                                                     LoraSegments seg, T* y, int64_t ldy) {
  __shared__ float Ss[kSR][kSC + 1];
  __shared__ float Bs[kSN][kSC + 1];
  __shared__ int64_t yrow[kSR];
  int g, tile;
  if (!find_tile_bounded(seg.seg_indptr, static_cast<int>(seg.G), kSR, blockIdx.x, &g, &tile)) return;
  const int k = blockIdx.y;
  const int64_t osz = sl.out_size[k];
  const int64_t o0 = static_cast<int64_t>(blockIdx.z) * kSN;
  if (o0 >= osz) return;
  const int slot = seg.seg_slot[g];
  const int R = slice_rank(seg, slot, sl.n, k, max_r);
  if (R == 0) return;  // block-uniform, before any barrier
  const int row0 = seg.seg_indptr[g] + tile * kSR;
  const int nrows = min(kSR, seg.seg_indptr[g + 1] - row0);
  const int ncols = static_cast<int>(imin64(kSN, osz - o0));
  const T* B = static_cast<const T*>(sl.B[k]) + (static_cast<int64_t>(slot) * osz + o0) * max_r;
  if (threadIdx.x < kSR) {
    const int32_t* py = seg.perm_y ? seg.perm_y : seg.perm;
    yrow[threadIdx.x] = threadIdx.x < nrows ? static_cast<int64_t>(py[row0 + threadIdx.x]) : 0;
  }
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  float acc[8][4];
#pragma unroll
  for (int q = 0; q < 8; ++q)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[q][j] = 0.0f;
  for (int c0 = 0; c0 < R; c0 += kSC) {
    for (int e = threadIdx.x; e < kSR * kSC; e += blockDim.x) {
      const int r = e / kSC, cc = e % kSC;
      Ss[r][cc] = (r < nrows && c0 + cc < R) ? s[(static_cast<int64_t>(row0 + r) * sl.n + k) * max_r + c0 + cc] : 0.0f;
    }
    for (int e = threadIdx.x; e < kSN * kSC; e += blockDim.x) {
      const int o = e / kSC, cc = e % kSC;
      Bs[o][cc] = (o < ncols && c0 + cc < R) ? ld(B + static_cast<int64_t>(o) * max_r + c0 + cc) : 0.0f;
    }
    __syncthreads();
#pragma unroll 4
    for (int cc = 0; cc < kSC; ++cc) {
      float b[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[lane + 32 * j][cc];
#pragma unroll
      for (int q = 0; q < 8; ++q) {
        const float sv = Ss[w * 8 + q][cc];
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[q][j] += sv * b[j];
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int q = 0; q < 8; ++q) {
    const int row = w * 8 + q;
    if (row >= nrows) break;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int col = lane + 32 * j;
      if (col < ncols) {
        T* yp = y + yrow[row] * ldy + sl.out_off[k] + o0 + col;
        st(yp, ld(yp) + acc[q][j]);
      }
    }
  }
}

constexpr int kEC = 128;  // output columns (= threads) per decode-expand block

// Decode expand: block = (16-row tile of one segment, slice, 128 output columns), thread = one output column o. The
// tile's s rows (zero past the rank) and its y row indices are staged in shared memory; the thread streams its B row
// B[slot, o, 0..R) in 16-byte vectors (a warp covers 32 consecutive B rows, one contiguous block of memory) and keeps
// 16 fp32 sums (one per row) fed by broadcast shared-memory reads; then y[row, o] += sum, coalesced across threads.
// Why: expand_kernel staged a 64 × R tile of B per 16 rows with integer-divided indices and ran a long chain of
// dependent loads per small block (21 µs at batch 64); here each block has one staging barrier and its B loads
// are independent of the s staging. B values at or past the rank are masked to 0 (never trusted).
template <typename T>
__global__ void __launch_bounds__(kEC) expand_decode_kernel(const float* __restrict__ s, LoraSlices sl, int max_r,
                                                            LoraSegments seg, T* y, int64_t ldy, bool vec) {
  constexpr int V = 16 / sizeof(T);
  __shared__ __align__(16) float Ss[kTM][kLoraMaxRank];
  __shared__ int64_t yrow[kTM];
  int g, tile;
  if (!find_tile_bounded(seg.seg_indptr, static_cast<int>(seg.G), kTM, blockIdx.x, &g, &tile)) return;
  const int k = blockIdx.y;
  const int64_t osz = sl.out_size[k];
  const int64_t o0 = static_cast<int64_t>(blockIdx.z) * kEC;
  if (o0 >= osz) return;  // block-uniform, before the barrier
  const int slot = seg.seg_slot[g];
  const int R = slice_rank(seg, slot, sl.n, k, max_r);
  if (R == 0) return;
  const int row0 = seg.seg_indptr[g] + tile * kTM;
  const int nrows = min(kTM, seg.seg_indptr[g + 1] - row0);
  const int RV = (R + V - 1) / V * V;  // ranks rounded up to whole vectors (≤ max_r when vec: max_r % V == 0)
  for (int e = threadIdx.x; e < kTM * RV; e += kEC) {
    const int r = e / RV, c = e % RV;
    Ss[r][c] = (r < nrows && c < R) ? s[(static_cast<int64_t>(row0 + r) * sl.n + k) * max_r + c] : 0.0f;
  }
  if (threadIdx.x < kTM) {
    const int32_t* py = seg.perm_y ? seg.perm_y : seg.perm;
    yrow[threadIdx.x] = threadIdx.x < nrows ? static_cast<int64_t>(py[row0 + threadIdx.x]) : 0;
  }
  const int64_t o = o0 + threadIdx.x;
  const bool live = o < osz;
  const T* Brow = static_cast<const T*>(sl.B[k]) + (static_cast<int64_t>(slot) * osz + (live ? o : osz - 1)) * max_r;
  __syncthreads();
  float acc[kTM];
#pragma unroll
  for (int r = 0; r < kTM; ++r) acc[r] = 0.0f;
  if (vec) {
#pragma unroll 4
    for (int c0 = 0; c0 < R; c0 += V) {  // unrolled so that several B vectors are in flight
      float b[V];
      ld16(Brow + c0, b);
#pragma unroll
      for (int e = 0; e < V; ++e)
        if (c0 + e >= R) b[e] = 0.0f;
#pragma unroll
      for (int r = 0; r < kTM; ++r)
#pragma unroll
        for (int e = 0; e < V; e += 4) {
          const float4 sv = *reinterpret_cast<const float4*>(&Ss[r][c0 + e]);
          acc[r] += sv.x * b[e] + sv.y * b[e + 1] + sv.z * b[e + 2] + sv.w * b[e + 3];
        }
    }
  } else {
#pragma unroll 4
    for (int c = 0; c < R; ++c) {
      const float b = ld(Brow + c);
#pragma unroll
      for (int r = 0; r < kTM; ++r) acc[r] += Ss[r][c] * b;
    }
  }
  if (!live) return;
  const int64_t col = sl.out_off[k] + o;
#pragma unroll
  for (int r = 0; r < kTM; ++r)
    if (r < nrows) {
      T* yp = y + yrow[r] * ldy + col;
      st(yp, ld(yp) + acc[r]);
    }
}

template <typename T>
__global__ void embedding_shrink_kernel(const int32_t* __restrict__ ids, const T* __restrict__ A, int64_t vocab,
                                        int max_r, LoraSegments seg, float* __restrict__ s) {
  const int g = blockIdx.x;
  const int slot = seg.seg_slot[g];
  const int R = slice_rank(seg, slot, 1, 0, max_r);
  const int i0 = seg.seg_indptr[g], i1 = seg.seg_indptr[g + 1];
  for (int64_t e = threadIdx.x; e < static_cast<int64_t>(i1 - i0) * max_r; e += blockDim.x) {
    const int i = i0 + static_cast<int>(e / max_r), r = static_cast<int>(e % max_r);
    const int64_t id = ids[seg.perm[i]];
    s[static_cast<int64_t>(i) * max_r + r] =
        r < R ? ld(A + (static_cast<int64_t>(slot) * max_r + r) * vocab + id) : 0.0f;
  }
}

// Grid of the tiled kernels: ≥ floor(T_lora / kTM) + G, the range find_tile_bounded maps onto segments.
unsigned tiles_bound(const LoraSegments& seg, int tile_rows = kTM) {
  return static_cast<unsigned>((seg.T_lora + tile_rows - 1) / tile_rows + seg.G);
}
}  // namespace

cudaError_t lora_shrink(DType dt, const void* x, int64_t ldx, int64_t in, const LoraSlices& sl, int64_t max_r,
                        const LoraSegments& seg, float* s, LoraPath path, cudaStream_t stream) {
  if (seg.T_lora == 0 || seg.G == 0 || sl.n == 0) return cudaSuccess;
  if (sl.n > kLoraMaxSlices || max_r <= 0 || max_r > kLoraMaxRank) return cudaErrorInvalidValue;
  if (path == LoraPath::kAuto) path = seg.T_lora <= 16 * seg.G ? LoraPath::kDecode : LoraPath::kSgmv;
  const int mr = static_cast<int>(max_r);
  if (path == LoraPath::kSgmv) {
    const dim3 grid(tiles_bound(seg, kSR), sl.n, static_cast<unsigned>((max_r + kSC - 1) / kSC));
    if (dt == DType::f32)
      shrink_sgmv_kernel<float><<<grid, 256, 0, stream>>>(static_cast<const float*>(x), ldx, in, sl, mr, seg, s);
    else
      shrink_sgmv_kernel<__nv_bfloat16><<<grid, 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), ldx, in,
                                                                   sl, mr, seg, s);
  } else {
    const dim3 grid(tiles_bound(seg, kDRows), sl.n, static_cast<unsigned>((max_r + kDR - 1) / kDR));
    // 16-byte vectors when x rows and every A row start 16-byte aligned
    const int64_t V = dt == DType::f32 ? 4 : 8;
    bool vec = in % V == 0 && ldx % V == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
    for (int k = 0; k < sl.n; ++k) vec = vec && reinterpret_cast<uintptr_t>(sl.A[k]) % 16 == 0;
    if (dt == DType::f32)
      shrink_decode_kernel<float><<<grid, 256, 0, stream>>>(static_cast<const float*>(x), ldx, in, sl, mr, seg, s,
                                                            vec);
    else
      shrink_decode_kernel<__nv_bfloat16><<<grid, 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), ldx, in,
                                                                     sl, mr, seg, s, vec);
  }
  return cudaGetLastError();
}

cudaError_t lora_expand(DType dt, const float* s, const LoraSlices& sl, int64_t max_r, const LoraSegments& seg,
                        void* y, int64_t ldy, cudaStream_t stream, LoraPath path) {
  if (seg.T_lora == 0 || seg.G == 0 || sl.n == 0) return cudaSuccess;
  if (sl.n > kLoraMaxSlices || max_r <= 0 || max_r > kLoraMaxRank) return cudaErrorInvalidValue;
  int64_t max_out = 0;
  for (int k = 0; k < sl.n; ++k) max_out = sl.out_size[k] > max_out ? sl.out_size[k] : max_out;
  if (max_out == 0) return cudaSuccess;
  const int mr = static_cast<int>(max_r);
  if (path == LoraPath::kAuto) path = seg.T_lora <= 16 * seg.G ? LoraPath::kDecode : LoraPath::kSgmv;
  if (path == LoraPath::kDecode) {
    const dim3 grid(tiles_bound(seg), sl.n, static_cast<unsigned>((max_out + kEC - 1) / kEC));
    // 16-byte B vectors when every B row (max_r elements) starts 16-byte aligned
    const int64_t V = dt == DType::f32 ? 4 : 8;
    bool vec = max_r % V == 0;
    for (int k = 0; k < sl.n; ++k) vec = vec && reinterpret_cast<uintptr_t>(sl.B[k]) % 16 == 0;
    if (dt == DType::f32)
      expand_decode_kernel<float><<<grid, kEC, 0, stream>>>(s, sl, mr, seg, static_cast<float*>(y), ldy, vec);
    else
      expand_decode_kernel<__nv_bfloat16><<<grid, kEC, 0, stream>>>(s, sl, mr, seg, static_cast<__nv_bfloat16*>(y),
                                                                    ldy, vec);
    return cudaGetLastError();
  }
  const dim3 grid(tiles_bound(seg, kSR), sl.n, static_cast<unsigned>((max_out + kSN - 1) / kSN));
  if (dt == DType::f32)
    expand_kernel<float><<<grid, 256, 0, stream>>>(s, sl, mr, seg, static_cast<float*>(y), ldy);
  else
    expand_kernel<__nv_bfloat16><<<grid, 256, 0, stream>>>(s, sl, mr, seg, static_cast<__nv_bfloat16*>(y), ldy);
  return cudaGetLastError();
}

cudaError_t lora_embedding_shrink(DType dt, const int32_t* ids, const void* A, int64_t vocab, int64_t max_r,
                                  const LoraSegments& seg, float* s, cudaStream_t stream) {
  if (seg.T_lora == 0 || seg.G == 0) return cudaSuccess;
  if (max_r <= 0 || max_r > kLoraMaxRank) return cudaErrorInvalidValue;
  const int mr = static_cast<int>(max_r);
  if (dt == DType::f32)
    embedding_shrink_kernel<float><<<static_cast<unsigned>(seg.G), 128, 0, stream>>>(
        ids, static_cast<const float*>(A), vocab, mr, seg, s);
  else
    embedding_shrink_kernel<__nv_bfloat16><<<static_cast<unsigned>(seg.G), 128, 0, stream>>>(
        ids, static_cast<const __nv_bfloat16*>(A), vocab, mr, seg, s);
  return cudaGetLastError();
}

}  // namespace hylora::cuda
