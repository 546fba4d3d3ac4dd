// SGMV (prefill) LoRA shrink and expand on mma.sync tensor cores (math in lora.h).
//
// Both are a segment GEMM C = P · Qᵀ whose operands are K-contiguous rows: shrink P = x rows (gathered through
// perm), Q = A_k[slot] rows (ranks), K = in; expand P = s rows, Q = B_k[slot] rows (output columns), K = rank. A warp
// computes a 32 × 32 tile of C as 2 × 4 m16n8 fragments; operands go global → shared memory (rows padded by 16
// bytes so that the 8 row addresses of an ldmatrix hit distinct banks) → ldmatrix.x4. One k-step is 8 32-bit
// words: the fragment layouts of m16n8k8 tf32 and m16n8k16 bf16 address the same words, so one loader serves both.
//
// Precision. The engine runs LoRA with fp32 x / A / B / s in both --dtype modes and promises float32 logprobs
// within 1e-3 of float64, so plain TF32 (10-bit mantissa) is not enough. fp32 operands use 3xTF32: a = a_hi + a_lo
// with a_hi = tf32(a), a_lo = tf32(a − a_hi); C += a_lo·b_hi + a_hi·b_lo + a_hi·b_hi (fp32 accumulation; the
// dropped a_lo·b_lo is ~2⁻²² relative), i.e. fp32-level results at a few times the CUDA-core rate. bf16 operands
// are exact in tf32 and in bf16: the bf16 shrink is one bf16 mma (products exact), the bf16 expand (fp32 s, bf16 B)
// splits s only (2 mma).
//
// Shrink: block = (64-row tile of one segment, slice, 64-rank group), 4 warps as 2 × 2. K goes in chunks of 128
// bytes of a row (32 fp32 / 64 bf16), double-buffered with cp.async (16-byte copies, zero-filled past `in`, past
// the segment's rows and past the adapter's rank; scalar copies when x / A rows are not 16-byte aligned). Warps
// skip n8 fragment pairs past the rank and warp tiles past the segment's rows; rank groups wholly past the rank only
// write zeros. Each chunk is summed from zero on the tensor cores and added into the fp32 result with ordinary
// (round-to-nearest) adds: the tensor cores' own accumulation truncates, and over in = 2560 that bias alone reached
// 2.3e-5 of max|s| (now ~4e-7).
// Grid: block index = (row tile, slice, rank group), rank group fastest, so the blocks that read the same x rows run
// together and x comes from DRAM about once. Why: the CUDA-core kernel it replaces (fp32 FMAs fed from shared
// memory, 64 rows × 16 ranks a block) took 1.39 ms (bf16) / 1.48 ms (fp32) at 8192 rows × 4096 in × 3 slices of
// rank 64 on an H200 (~9 TFLOP/s, instruction-bound); this one 0.11 / 0.39 ms. What bounds it now (not profiled):
// each block walks `in` serially, ~1-1.5 µs a chunk even with one block per SM (0.19 ms at 64 rows, fp32), so small
// batches sit on that floor and lora.cu's kAuto keeps them on the decode kernel (see there); split-K or a deeper
// pipeline (dynamic shared memory) are the next steps.
// Expand: block = (64-row tile, slice, 128 output columns), 8 warps as 2 × 4; ranks in chunks of 32 staged through
// registers (s fp32, B converted to fp32; 16-byte loads when aligned). The fp32 result tile goes through shared
// memory so that y is read and written once, in coalesced 16-byte vectors (one rounding for bf16 y). Why: the
// CUDA-core expand (32 FMAs a thread per rank) was compute-bound at ~4× the y traffic's time: 0.56 → 0.25 ms (bf16
// y) and 0.60 → 0.33 ms (fp32) at 8192 rows × 6144 columns × rank 64; still ~3× the y traffic (per-block round
// trips: staging, then y).
#include "ops/cuda/lora_sgmv_mma.h"

#include <cuda_bf16.h>

#include <climits>
#include <type_traits>

#include "ops/cuda/common.cuh"
#include "ops/cuda/mma_sm80.cuh"

namespace hylora::cuda {
using namespace detail;

namespace {
using bf16 = __nv_bfloat16;

constexpr int kRows = 64;  // rows (M) per block tile, shrink and expand
// shrink
constexpr int kShrinkCols = 64;  // ranks per block: 4 warps as 2 × 2 warp tiles of 32 × 32
constexpr int kShrinkThreads = 128;
constexpr int kChunkWords = 32;                // K words per pipeline stage (128 bytes of a row)
constexpr int kChunkStride = kChunkWords + 4;  // 144-byte shared rows: ldmatrix row addresses in distinct banks
constexpr int kStages = 2;                     // 2 × (64 + 64) rows × 144 B = 36 KB of static shared memory
// expand
constexpr int kExpandCols = 128;  // output columns per block: 8 warps as 2 × 4 warp tiles of 32 × 32
constexpr int kExpandThreads = 2 * kExpandCols;  // 2 × (kExpandCols / 32) warps
constexpr int kRankChunk = 32;                // ranks per staging round (one round for rank ≤ 32)
constexpr int kRankStride = kRankChunk + 4;   // 144-byte shared rows (distinct banks for ldmatrix)
constexpr int kOutStride = kExpandCols + 8;   // fp32 result rows: conflict-free float2 fragment stores

// How a warp multiplies the 32-bit words it loads: bf16 pairs (one mma.m16n8k16), fp32 → 3xTF32 (both operands
// split), fp32 P × tf32-exact Q → 2xTF32 (only P split; Q holds bf16 values widened to fp32).
enum class Mma { kBf16, kTf32x3, kTf32x2 };

__device__ __forceinline__ uint32_t tf32_rna(float f) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(f));
  return r;
}
// w (fp32 bits) = hi + lo with hi, lo tf32; |lo| ≤ 2⁻¹¹|w| and lo is itself rounded to tf32 (error ≤ 2⁻²²|w|).
__device__ __forceinline__ void split_tf32(uint32_t w, uint32_t& hi, uint32_t& lo) {
  const float f = __uint_as_float(w);
  hi = tf32_rna(f);
  lo = tf32_rna(f - __uint_as_float(hi));
}

// Shared-memory addresses of this lane's ldmatrix rows for a warp tile whose P rows start at p_row0 and Q rows at
// q_row0 (stride in 32-bit words). P (m16 × 8 words, x4): matrices = rows 0-7 / 8-15 × words 0-3 / 4-7, giving
// the A fragment {(g, t), (g+8, t), (g, t+4), (g+8, t+4)} (g = lane/4, t = lane%4, in words). Q (two n8 tiles ×
// 8 words, x4): matrices = (tile 0, words 0-3), (tile 0, words 4-7), (tile 1, ...), giving B fragments
// {(n g, t), (n g, t+4)} of both tiles.
struct WarpAddr {
  uint32_t p, q;
};
__device__ __forceinline__ WarpAddr warp_addr(const uint32_t* P, int p_row0, const uint32_t* Q, int q_row0,
                                              int stride, int lane) {
  WarpAddr w;
  w.p = smem_addr(P + (p_row0 + (lane & 15)) * stride + (lane >> 4) * 4);
  w.q = smem_addr(Q + (q_row0 + (lane & 7) + ((lane >> 4) << 3)) * stride + ((lane >> 3) & 1) * 4);
  return w;
}

// One k-step (8 words) of a warp's 32 × (8·NT) tile: acc[mi][ni] (rows 16·mi, columns 8·ni of the warp tile) +=
// P Qᵀ, for ni < NT (NT = 2 or 4, a compile-time count: a branch around each mma.sync would make the compiler
// re-converge the warp before every one of them, which measured ~8× slower than the mma themselves).
template <Mma M, int NT>
__device__ __forceinline__ void warp_kstep(float (&acc)[2][4][4], WarpAddr w, int stride_bytes) {
  uint32_t a[2][4], b[NT][2];
#pragma unroll
  for (int mi = 0; mi < 2; ++mi) ldsm_x4(w.p + mi * 16 * stride_bytes, a[mi]);
#pragma unroll
  for (int p = 0; p < NT / 2; ++p) {
    uint32_t q[4];
    ldsm_x4(w.q + p * 16 * stride_bytes, q);
    b[2 * p][0] = q[0];
    b[2 * p][1] = q[1];
    b[2 * p + 1][0] = q[2];
    b[2 * p + 1][1] = q[3];
  }
  if constexpr (M == Mma::kBf16) {
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
      for (int ni = 0; ni < NT; ++ni) mma_bf16(acc[mi][ni], a[mi], b[ni]);
  } else {
    uint32_t bh[NT][2], bl[NT][2];
#pragma unroll
    for (int ni = 0; ni < NT; ++ni)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        if constexpr (M == Mma::kTf32x3)
          split_tf32(b[ni][e], bh[ni][e], bl[ni][e]);
        else
          bh[ni][e] = b[ni][e];  // exact in tf32 (widened bf16)
      }
#pragma unroll
    for (int mi = 0; mi < 2; ++mi) {
      uint32_t ah[4], al[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) split_tf32(a[mi][e], ah[e], al[e]);
      // Small terms first; the NT fragments of a term are independent, so consecutive mma don't wait on each other.
#pragma unroll
      for (int ni = 0; ni < NT; ++ni) mma_tf32(acc[mi][ni], al, bh[ni]);
      if constexpr (M == Mma::kTf32x3) {
#pragma unroll
        for (int ni = 0; ni < NT; ++ni) mma_tf32(acc[mi][ni], ah, bl[ni]);
      }
#pragma unroll
      for (int ni = 0; ni < NT; ++ni) mma_tf32(acc[mi][ni], ah, bh[ni]);
    }
  }
}

// The k-steps [0, nk) of one staged chunk: fragment columns at or past `live_n` n8 tiles are skipped in pairs
// (one branch per chunk, outside the mma sequence).
template <Mma M>
__device__ __forceinline__ void warp_chunk(float (&acc)[2][4][4], WarpAddr w, int stride_bytes, int nk, int live_n) {
  if (live_n > 2) {
    for (int ks = 0; ks < nk; ++ks) warp_kstep<M, 4>(acc, WarpAddr{w.p + ks * 32, w.q + ks * 32}, stride_bytes);
  } else {
    for (int ks = 0; ks < nk; ++ks) warp_kstep<M, 2>(acc, WarpAddr{w.p + ks * 32, w.q + ks * 32}, stride_bytes);
  }
}

__device__ __forceinline__ void zero(float (&acc)[2][4][4]) {
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.0f;
}

__device__ __forceinline__ int live_tiles(int extent, int tile, int max_tiles) {
  return max(0, min(max_tiles, (extent + tile - 1) / tile));
}

// x [*, ldx] of T (gathered through perm), A_k [slots, max_r, in] of T, s fp32 [T_lora, n, max_r].
template <typename T, Mma M>
__global__ void __launch_bounds__(kShrinkThreads, 3)
    shrink_sgmv_mma_kernel(const T* __restrict__ x, int64_t ldx, int64_t in, LoraSlices sl, int max_r,
                           LoraSegments seg, float* __restrict__ s, int rank_groups, bool vec) {
  constexpr int E = 4 / static_cast<int>(sizeof(T));  // elements per 32-bit word
  constexpr int kChunkElems = kChunkWords * E;
  using Raw = std::conditional_t<sizeof(T) == 4, uint32_t, uint16_t>;
  __shared__ __align__(16) uint32_t Xs[kStages][kRows][kChunkStride];
  __shared__ __align__(16) uint32_t Ws[kStages][kShrinkCols][kChunkStride];
  __shared__ int64_t xoff[kRows];  // element offset of each tile row in x, −1 past the segment
  const int n = sl.n;
  const int rg = static_cast<int>(blockIdx.x % rank_groups);
  const int k = static_cast<int>(blockIdx.x / rank_groups % n);
  int g, tile;
  if (!find_tile_bounded(seg.seg_indptr, static_cast<int>(seg.G), kRows, blockIdx.x / rank_groups / n, &g, &tile))
    return;
  const int slot = seg.seg_slot[g];
  const int R = lora_slice_rank(seg, slot, n, k, max_r);
  const int r0 = rg * kShrinkCols;
  const int nr = max(0, min(kShrinkCols, R - r0));  // live ranks of this block (block-uniform)
  const int ncols = min(kShrinkCols, max_r - r0);   // columns of s it writes (zeros from nr on)
  const int row0 = seg.seg_indptr[g] + tile * kRows;
  const int nrows = min(kRows, seg.seg_indptr[g + 1] - row0);
  const int64_t lds = static_cast<int64_t>(n) * max_r;
  float* sb = s + static_cast<int64_t>(row0) * lds + static_cast<int64_t>(k) * max_r + r0;
  if (nr == 0) {  // rank group wholly past the rank (before any barrier)
    for (int e = threadIdx.x; e < nrows * ncols; e += kShrinkThreads) sb[(e / ncols) * lds + e % ncols] = 0.0f;
    return;
  }
  if (threadIdx.x < kRows)
    xoff[threadIdx.x] = threadIdx.x < nrows ? static_cast<int64_t>(seg.perm[row0 + threadIdx.x]) * ldx : -1;
  const T* A = static_cast<const T*>(sl.A[k]) + (static_cast<int64_t>(slot) * max_r + r0) * in;
  __syncthreads();

  // Chunk c of K (elements [c·kChunkElems, +kChunkElems)) of the 64 x rows and the nr A rows → stage st.
  auto load = [&](int c, int st) {
    const int64_t e0 = static_cast<int64_t>(c) * kChunkElems;
    if (vec) {  // 16-byte pieces; in % (4E) == 0, so a piece is wholly inside or past `in`
      constexpr int kPieces = kChunkWords / 4;
      for (int e = threadIdx.x; e < (kRows + kShrinkCols) * kPieces; e += kShrinkThreads) {
        const int r = e / kPieces, q = e % kPieces;
        const int64_t j = e0 + q * 4 * E;
        if (r < kRows) {
          const bool ok = xoff[r] >= 0 && j < in;
          cp_async16(smem_addr(&Xs[st][r][q * 4]), ok ? x + xoff[r] + j : x, ok);
        } else {
          const int w = r - kRows;
          const bool ok = w < nr && j < in;
          cp_async16(smem_addr(&Ws[st][w][q * 4]), ok ? A + static_cast<int64_t>(w) * in + j : A, ok);
        }
      }
    } else {  // element copies (unaligned rows); the bits are copied, zeros past the edges
      const Raw* xr = reinterpret_cast<const Raw*>(x);
      const Raw* ar = reinterpret_cast<const Raw*>(A);
      for (int e = threadIdx.x; e < (kRows + kShrinkCols) * kChunkElems; e += kShrinkThreads) {
        const int r = e / kChunkElems, cc = e % kChunkElems;
        const int64_t j = e0 + cc;
        if (r < kRows) {
          reinterpret_cast<Raw*>(&Xs[st][r][0])[cc] = (xoff[r] >= 0 && j < in) ? xr[xoff[r] + j] : Raw(0);
        } else {
          const int w = r - kRows;
          reinterpret_cast<Raw*>(&Ws[st][w][0])[cc] =
              (w < nr && j < in) ? ar[static_cast<int64_t>(w) * in + j] : Raw(0);
        }
      }
    }
  };

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wm = warp & 1, wn = warp >> 1;
  const int live_n = live_tiles(nr - wn * 32, 8, 4);
  const bool busy = wm * 32 < nrows && live_n > 0;  // warp-uniform
  // The tensor cores add into their fp32 accumulators with truncation, a bias of up to an ulp of the running sum per
  // mma: over in = 2560 (320 k-steps × 3 mma) that reached 2.3e-5 of max|s|. So each chunk (4 k-steps) is summed
  // from zero on the tensor cores and added into acc with round-to-nearest fp32 adds.
  float acc[2][4][4], part[2][4][4];
  zero(acc);

  const int nchunks = static_cast<int>((in + kChunkElems - 1) / kChunkElems);
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < nchunks) load(st, st);
    cp_async_commit();  // (possibly empty group: keeps "wait_group kStages−2" meaning "chunk c has landed")
  }
  for (int c = 0; c < nchunks; ++c) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // chunk c visible to all; stage (c − 1) % kStages no longer read by anyone
    if (c + kStages - 1 < nchunks) load(c + kStages - 1, (c + kStages - 1) % kStages);
    cp_async_commit();
    if (busy) {
      const int st = c % kStages;
      zero(part);
      warp_chunk<M>(part, warp_addr(&Xs[st][0][0], wm * 32, &Ws[st][0][0], wn * 32, kChunkStride, lane),
                    kChunkStride * 4, kChunkWords / 8, live_n);
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[mi][ni][e] += part[mi][ni][e];
    }
  }
  cp_async_wait<0>();

  // C fragment (g = lane/4, t = lane%4): rows g and g + 8, columns 2t and 2t + 1 of each m16n8 tile.
  const int gq = lane >> 2, tq = lane & 3;
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = wm * 32 + mi * 16 + gq + 8 * h;
      if (row >= nrows) continue;
#pragma unroll
      for (int ni = 0; ni < 4; ++ni)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int col = wn * 32 + ni * 8 + 2 * tq + e;
          if (col < ncols) sb[row * lds + col] = col < nr ? acc[mi][ni][2 * h + e] : 0.0f;
        }
    }
}

// y (16 bytes at p) += v[0 .. 16/sizeof(T)), one rounding.
__device__ __forceinline__ void add16(float* p, const float* v) {
  float4 q = *reinterpret_cast<float4*>(p);
  q.x += v[0];
  q.y += v[1];
  q.z += v[2];
  q.w += v[3];
  *reinterpret_cast<float4*>(p) = q;
}
__device__ __forceinline__ void add16(bf16* p, const float* v) {
  uint4 q = *reinterpret_cast<uint4*>(p);
  float f[8];
  bf16x8_to_float(q, f);
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&q);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(f[2 * i] + v[2 * i], f[2 * i + 1] + v[2 * i + 1]);
  *reinterpret_cast<uint4*>(p) = q;
}

// s fp32 [T_lora, n, max_r], B_k [slots, out_size_k, max_r] of T, y [*, ldy] of T. vec_y: bit k when slice k's
// y columns can be updated in 16-byte vectors; vec_s / vec_b: s / B rows 16-byte aligned.
template <typename T, Mma M>
__global__ void __launch_bounds__(kExpandThreads, 512 / kExpandThreads)
    expand_sgmv_mma_kernel(const float* __restrict__ s, LoraSlices sl, int max_r, LoraSegments seg, T* y,
                           int64_t ldy, int col_groups, unsigned vec_y, bool vec_s, bool vec_b) {
  constexpr int V = 16 / static_cast<int>(sizeof(T));
  constexpr int kStageWords = (kRows + kExpandCols) * kRankStride;
  constexpr int kOutWords = kRows * kOutStride;
  // staging rounds (s rows, then B rows) and, after the last round, the fp32 result tile share the buffer
  __shared__ __align__(16) uint32_t smem[kStageWords > kOutWords ? kStageWords : kOutWords];
  __shared__ int64_t yoff[kRows];  // element offset of each tile row's first output column in y
  auto Ss = reinterpret_cast<uint32_t(*)[kRankStride]>(smem);
  auto Bs = reinterpret_cast<uint32_t(*)[kRankStride]>(smem + kRows * kRankStride);
  auto Os = reinterpret_cast<float(*)[kOutStride]>(smem);
  const int n = sl.n;
  const int cg = static_cast<int>(blockIdx.x % col_groups);
  const int k = static_cast<int>(blockIdx.x / col_groups % n);
  int g, tile;
  if (!find_tile_bounded(seg.seg_indptr, static_cast<int>(seg.G), kRows, blockIdx.x / col_groups / n, &g, &tile))
    return;
  const int64_t osz = sl.out_size[k];
  const int64_t o0 = static_cast<int64_t>(cg) * kExpandCols;
  if (o0 >= osz) return;  // block-uniform, before any barrier
  const int slot = seg.seg_slot[g];
  const int R = lora_slice_rank(seg, slot, n, k, max_r);
  if (R == 0) return;
  const int row0 = seg.seg_indptr[g] + tile * kRows;
  const int nrows = min(kRows, seg.seg_indptr[g + 1] - row0);
  const int ncols = static_cast<int>(imin64(kExpandCols, osz - o0));
  const int64_t lds = static_cast<int64_t>(n) * max_r;
  const float* sb = s + static_cast<int64_t>(row0) * lds + static_cast<int64_t>(k) * max_r;
  const T* B = static_cast<const T*>(sl.B[k]) + (static_cast<int64_t>(slot) * osz + o0) * max_r;
  if (threadIdx.x < kRows) {
    const int32_t* py = seg.perm_y ? seg.perm_y : seg.perm;
    yoff[threadIdx.x] =
        threadIdx.x < nrows ? static_cast<int64_t>(py[row0 + threadIdx.x]) * ldy + sl.out_off[k] + o0 : 0;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wm = warp & 1, wn = warp >> 1;
  const int live_n = live_tiles(ncols - wn * 32, 8, 4);
  const bool busy = wm * 32 < nrows && live_n > 0;  // warp-uniform
  float acc[2][4][4];  // (K = rank ≤ 128: at most 48 truncating mma adds, no chunked sums needed)
  zero(acc);

  for (int c0 = 0; c0 < R; c0 += kRankChunk) {
    // s rows [nrows, ranks c0..c0+32) and B rows [ncols, same ranks] as fp32 words; zeros past rows / cols / rank
    if (vec_s) {
      for (int e = threadIdx.x; e < kRows * (kRankChunk / 4); e += kExpandThreads) {
        const int r = e / (kRankChunk / 4), q = e % (kRankChunk / 4) * 4;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (r < nrows && c0 + q < R) {
          v = *reinterpret_cast<const float4*>(sb + r * lds + c0 + q);
          if (c0 + q + 1 >= R) v.y = 0.0f;
          if (c0 + q + 2 >= R) v.z = 0.0f;
          if (c0 + q + 3 >= R) v.w = 0.0f;
        }
        *reinterpret_cast<float4*>(&Ss[r][q]) = v;
      }
    } else {
      for (int e = threadIdx.x; e < kRows * kRankChunk; e += kExpandThreads) {
        const int r = e / kRankChunk, q = e % kRankChunk;
        Ss[r][q] = __float_as_uint(r < nrows && c0 + q < R ? sb[r * lds + c0 + q] : 0.0f);
      }
    }
    if (vec_b) {
      for (int e = threadIdx.x; e < kExpandCols * (kRankChunk / V); e += kExpandThreads) {
        const int o = e / (kRankChunk / V), q = e % (kRankChunk / V) * V;
        float v[V];
#pragma unroll
        for (int i = 0; i < V; ++i) v[i] = 0.0f;
        if (o < ncols && c0 + q < R) {
          ld16(B + static_cast<int64_t>(o) * max_r + c0 + q, v);
#pragma unroll
          for (int i = 1; i < V; ++i)
            if (c0 + q + i >= R) v[i] = 0.0f;
        }
#pragma unroll
        for (int i = 0; i < V; i += 4)
          *reinterpret_cast<float4*>(&Bs[o][q + i]) = make_float4(v[i], v[i + 1], v[i + 2], v[i + 3]);
      }
    } else {
      for (int e = threadIdx.x; e < kExpandCols * kRankChunk; e += kExpandThreads) {
        const int o = e / kRankChunk, q = e % kRankChunk;
        Bs[o][q] = __float_as_uint(o < ncols && c0 + q < R ? ld(B + static_cast<int64_t>(o) * max_r + c0 + q) : 0.0f);
      }
    }
    __syncthreads();
    if (busy)  // k-steps wholly past the rank are skipped
      warp_chunk<M>(acc, warp_addr(&Ss[0][0], wm * 32, &Bs[0][0], wn * 32, kRankStride, lane), kRankStride * 4,
                    (min(kRankChunk, R - c0) + 7) / 8, live_n);
    __syncthreads();  // (the last round's barrier also frees the buffer for the result tile)
  }

  const int gq = lane >> 2, tq = lane & 3;
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int ni = 0; ni < 4; ++ni)
        *reinterpret_cast<float2*>(&Os[wm * 32 + mi * 16 + gq + 8 * h][wn * 32 + ni * 8 + 2 * tq]) =
            make_float2(acc[mi][ni][2 * h], acc[mi][ni][2 * h + 1]);
  __syncthreads();
  if ((vec_y >> k) & 1u) {  // out_size % V == 0: a vector is wholly inside or past the slice
    for (int e = threadIdx.x; e < kRows * (kExpandCols / V); e += kExpandThreads) {
      const int r = e / (kExpandCols / V), c = e % (kExpandCols / V) * V;
      if (r < nrows && c < ncols) add16(y + yoff[r] + c, &Os[r][c]);
    }
  } else {
    for (int e = threadIdx.x; e < kRows * kExpandCols; e += kExpandThreads) {
      const int r = e / kExpandCols, c = e % kExpandCols;
      if (r < nrows && c < ncols) {
        T* yp = y + yoff[r] + c;
        st(yp, ld(yp) + Os[r][c]);
      }
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Block count of (row tile, slice, group): find_tile_bounded's bound ⌈T_lora / 64⌉ + G row tiles.
int64_t sgmv_blocks(const LoraSegments& seg, int n, int groups) {
  return ((seg.T_lora + kRows - 1) / kRows + seg.G) * n * groups;
}
}  // namespace

cudaError_t lora_shrink_sgmv_mma(DType dt, const void* x, int64_t ldx, int64_t in, const LoraSlices& sl, int max_r,
                                 const LoraSegments& seg, float* s, cudaStream_t stream) {
  const int rank_groups = (max_r + kShrinkCols - 1) / kShrinkCols;
  const int64_t blocks = sgmv_blocks(seg, sl.n, rank_groups);
  if (blocks > INT_MAX) return cudaErrorInvalidValue;
  // cp.async when x rows and every A row start 16-byte aligned
  const int64_t V = dt == DType::f32 ? 4 : 8;
  bool vec = in % V == 0 && ldx % V == 0 && aligned16(x);
  for (int k = 0; k < sl.n; ++k) vec = vec && aligned16(sl.A[k]);
  const unsigned grid = static_cast<unsigned>(blocks);
  if (dt == DType::f32)
    shrink_sgmv_mma_kernel<float, Mma::kTf32x3><<<grid, kShrinkThreads, 0, stream>>>(
        static_cast<const float*>(x), ldx, in, sl, max_r, seg, s, rank_groups, vec);
  else
    shrink_sgmv_mma_kernel<bf16, Mma::kBf16><<<grid, kShrinkThreads, 0, stream>>>(
        static_cast<const bf16*>(x), ldx, in, sl, max_r, seg, s, rank_groups, vec);
  return cudaGetLastError();
}

cudaError_t lora_expand_sgmv_mma(DType dt, const float* s, const LoraSlices& sl, int max_r, const LoraSegments& seg,
                                 void* y, int64_t ldy, int64_t max_out, cudaStream_t stream) {
  const int64_t col_groups = (max_out + kExpandCols - 1) / kExpandCols;
  const int64_t blocks = sgmv_blocks(seg, sl.n, 1) * col_groups;
  if (blocks > INT_MAX) return cudaErrorInvalidValue;
  const int64_t V = dt == DType::f32 ? 4 : 8;
  const bool vec_s = max_r % 4 == 0 && aligned16(s);
  bool vec_b = max_r % V == 0;
  unsigned vec_y = 0;
  for (int k = 0; k < sl.n; ++k) {
    vec_b = vec_b && aligned16(sl.B[k]);
    if (ldy % V == 0 && sl.out_off[k] % V == 0 && sl.out_size[k] % V == 0 && aligned16(y)) vec_y |= 1u << k;
  }
  const unsigned grid = static_cast<unsigned>(blocks);
  const int cgs = static_cast<int>(col_groups);
  if (dt == DType::f32)
    expand_sgmv_mma_kernel<float, Mma::kTf32x3><<<grid, kExpandThreads, 0, stream>>>(
        s, sl, max_r, seg, static_cast<float*>(y), ldy, cgs, vec_y, vec_s, vec_b);
  else
    expand_sgmv_mma_kernel<bf16, Mma::kTf32x2><<<grid, kExpandThreads, 0, stream>>>(
        s, sl, max_r, seg, static_cast<bf16*>(y), ldy, cgs, vec_y, vec_s, vec_b);
  return cudaGetLastError();
}

}  // namespace hylora::cuda
