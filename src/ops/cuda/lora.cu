// Multi-LoRA shrink / expand (math in lora.h): the decode path, the embedding gather and the path choice; the SGMV
// (prefill) path is on tensor cores in lora_sgmv_mma.cu.
// Decode shrink (segments of one or a few rows): a block per (4-row tile, slice, 4 rank columns) whose 8 warps split
// `in`; each thread reads 16-byte vectors of the 4 x rows and 4 A rows and keeps 4×4 fp32 sums, reduced by warp
// shuffles and across warps in shared memory. Decode expand: 16 rows × 128 columns, a thread per output column
// streaming its own B row. Columns/ranks ≥ the adapter's rank are skipped (zero by contract).
#include "ops/cuda/common.cuh"
#include "ops/cuda/lora.h"
#include "ops/cuda/lora_sgmv_mma.h"

namespace hylora::cuda {
using namespace detail;

namespace {
constexpr int kTM = 16;   // rows per decode-expand tile

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
  const int R = lora_slice_rank(seg, slot, sl.n, k, max_r);
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

constexpr int kEC = 128;  // output columns (= threads) per decode-expand block

// Decode expand: block = (16-row tile of one segment, slice, 128 output columns), thread = one output column o. The
// tile's s rows (zero past the rank) and its y row indices are staged in shared memory; the thread streams its B row
// B[slot, o, 0..R) in 16-byte vectors (a warp covers 32 consecutive B rows, one contiguous block of memory) and keeps
// 16 fp32 sums (one per row) fed by broadcast shared-memory reads; then y[row, o] += sum, coalesced across threads.
// Why: the SGMV expand of the time staged a 64 × R tile of B per 16 rows with integer-divided indices and ran a long chain of
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
  const int R = lora_slice_rank(seg, slot, sl.n, k, max_r);
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
  const int R = lora_slice_rank(seg, slot, 1, 0, max_r);
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
  // kAuto: the tensor-core SGMV shrink walks `in` serially per block (a ~0.2 ms floor at in 4096, fp32, H200), the
  // decode kernel ~2.3-2.8 ns per row × rank at in 4096 × 3 slices: decode measured faster at 2k rows of rank 16 and
  // 1k of rank 64, SGMV at 8k (bench_lora); by that rate the crossover is ~4k / ~1.5k rows, hence decode below
  // T_lora · max_r = 2^17 (max_r: the host's bound on the rank; a pool of max_r 64 serving rank 16 leans to SGMV).
  if (path == LoraPath::kAuto)
    path = seg.T_lora <= 16 * seg.G || seg.T_lora * max_r < (int64_t{1} << 17) ? LoraPath::kDecode : LoraPath::kSgmv;
  const int mr = static_cast<int>(max_r);
  if (path == LoraPath::kSgmv) return lora_shrink_sgmv_mma(dt, x, ldx, in, sl, mr, seg, s, stream);
  const dim3 grid(tiles_bound(seg, kDRows), sl.n, static_cast<unsigned>((max_r + kDR - 1) / kDR));
  // 16-byte vectors when x rows and every A row start 16-byte aligned
  const int64_t V = dt == DType::f32 ? 4 : 8;
  bool vec = in % V == 0 && ldx % V == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
  for (int k = 0; k < sl.n; ++k) vec = vec && reinterpret_cast<uintptr_t>(sl.A[k]) % 16 == 0;
  if (dt == DType::f32)
    shrink_decode_kernel<float><<<grid, 256, 0, stream>>>(static_cast<const float*>(x), ldx, in, sl, mr, seg, s, vec);
  else
    shrink_decode_kernel<__nv_bfloat16><<<grid, 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), ldx, in, sl,
                                                                   mr, seg, s, vec);
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
  // kAuto: the SGMV expand is as fast as the decode one from ~16 rows a segment on (bench_lora)
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
  return lora_expand_sgmv_mma(dt, s, sl, mr, seg, y, ldy, max_out, stream);
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
