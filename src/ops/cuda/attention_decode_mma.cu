// Split-KV paged attention decode with bf16 mma.sync (see attention_decode_mma.h). A decode step reads the K/V cache
// once, so everything here serves one goal: many bytes in flight, little work per byte.
//  - block = (row tile of TQ new rows of one sequence) × (HG query heads of one KV head) × (key split z), 6 warps. Its
//    NQ = 8·NT "pairs" (row, head) are the N of the mma (NT = 1 for Dv 256, 2 for Dv ≤ 128: 64 fp32 accumulators a
//    lane either way); dead pairs (past the group or the rows) are zero q rows whose outputs are dropped.
//  - each warp is an independent cp.async pipeline over 16-key tiles of the split (warp w takes tiles w, w+6, ...):
//    K [16][D] and V [16][Dv] rows go global -> shared (16-byte copies, zero-filled past the keys), two stages a warp,
//    page-table entries read one tile ahead; only __syncwarp inside the loop. Rows padded by 16 bytes: every ldmatrix
//    row address falls in its own bank group.
//  - scores transposed, S^T = K·Q^T: M = the tile's 16 keys (A = K rows, ldmatrix), N = 8 pairs (B = Q rows from
//    shared memory, ldmatrix), K = D in steps of 16 (two accumulator chains). A lane then holds keys g, g+8 (g = lane/4)
//    of pairs 2·(lane%4) + {0, 1}: online softmax in base 2 per pair, the max over a pair's 16 keys by 3 shuffles, the
//    sum l kept per lane (the lanes of a pair share every rescale) and reduced once after the loop.
//  - output transposed too, O^T += V^T·P^T: M = 16 dims of Dv (A = V rows by ldmatrix.trans), N = the 8 pairs, K = the
//    16 keys; B = P^T is the score fragment transposed per 8×8 block by movmatrix (no shared memory). P goes in as two
//    bf16 terms hi + lo (lo = p − hi rounded): ~16 significant bits, so the result stays at fp32-accumulation accuracy
//    (K, V, q are bf16 already: exact in the mma). The accumulator of a pair lives in the lanes that own its softmax
//    state, so rescaling needs no communication.
//  - split boundaries come from context_lens on the device (c_s = ceil(ctx_s / nsplit) keys a split): with a page-table
//    width bucketed to a power of two, fixed host-side chunks would leave up to half the splits empty.
//  - the warps' (m, l, O) merge through shared memory; nsplit == 1 writes o, else the normalised partial output and
//    lse2 = m + log2 l go to the workspace and decode_mma_merge combines: o = Σ_z 2^{lse_z − M} o_z / Σ_z 2^{lse_z − M}.
// Cost of a 16-key tile per warp: D/16 + 2·NT·Dv/16 mma (48 at D = Dv = 256) against 16·(D + Dv)·2 bytes of K/V;
// the tensor cores stay ~10% busy at full memory bandwidth.
// Measured, first version (H200, checks_attn_decode.cu's bench, D = Dv = 256, ctx 1024): batch 1 20 µs (nKV 4) /
// 24 µs (nKV 2), batch 64 1.7 / 1.5 TB/s of K/V, 2.1 TB/s at ctx 8192 (old kernel: 47 / 135 µs, 1.0 / 0.4 TB/s).
// Nsight Compute at batch 64: 4 warps per SM (139 KB of shared memory a block), one warp per scheduler issuing every
// ~4 cycles, DRAM 36% busy: the warps' own instruction streams were the limit, about half of them the cp.async row
// copies (a run-time division per copy, 32 copies a lane per tile). At batch 1 (one tile a warp, ~18 µs) the serial
// per-thread q loads (16 dependent global round trips) came before the first tile. Hence, in this version (not yet
// timed): q by cp.async overlapped with the first tile, the copies' (key, chunk) stepped without a division, the
// accumulators rescaled only when a running max moved, 6 warps a block, the fewest splits within 3% of the best
// wave fill. Further: one cp.async.bulk per K/V row (512 bytes, completing on an mbarrier) instead of 32 copies.
#include "ops/cuda/attention_decode_mma.h"

#include <cuda_bf16.h>

#include <cmath>

#include "ops/cuda/common.cuh"
#include "ops/cuda/decode_merge.cuh"
#include "ops/cuda/mma_sm80.cuh"

namespace hylora::cuda {
using namespace detail;

namespace {
using bf16 = __nv_bfloat16;
constexpr int kKeys = 16;   // keys per warp tile: M of the score mma, K of the P·V mma
constexpr int kWarps = 6;   // independent pipelines per block (D = Dv = 256: 203 KB of stages, one block an SM)
constexpr int kStages = 2;  // K/V tiles per warp in shared memory (one computed while the next lands)
constexpr int kMaxSplits = 32;
constexpr float kLog2e = 1.4426950408889634f;

// 8×8 b16 matrix transposed in registers: the C-fragment layout (row lane/4, columns 2·(lane%4) + {0,1}) of M in,
// the same layout of M^T out.
__device__ __forceinline__ uint32_t movmatrix_trans(uint32_t x) {
  uint32_t y;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(y) : "r"(x));
  return y;
}
// x = hi + lo with hi = bf16(x), lo = bf16(x − hi), for the two values of a fragment register
__device__ __forceinline__ void split_bf16(float x0, float x1, uint32_t& hi, uint32_t& lo) {
  hi = pack_bf16(x0, x1);
  const __nv_bfloat162 h = *reinterpret_cast<const __nv_bfloat162*>(&hi);
  lo = pack_bf16(x0 - __low2float(h), x1 - __high2float(h));
}

// Shared memory (bf16 rows padded by 8 elements = 16 bytes: an odd number of 16-byte units per row, so the 8 rows of
// an ldmatrix hit 8 distinct bank groups): Q [NQ][D + 8], then per warp kStages × {K [16][D + 8], V [16][Dv + 8]};
// after the loop the stage memory holds the warps' accumulators [kWarps][NQ][Dv + 4] fp32 for the merge.
__host__ __device__ constexpr int row_pad(int n) { return n + 8; }
template <int DV, int NT>
size_t smem_bytes(int D) {
  const size_t q = sizeof(bf16) * 8 * NT * row_pad(D);
  const size_t stages = sizeof(bf16) * kWarps * kStages * kKeys * (row_pad(D) + row_pad(DV));
  const size_t merge = sizeof(float) * kWarps * 8 * NT * (DV + 4);
  return q + (stages > merge ? stages : merge);
}

template <int DV, int NT>
__global__ void __launch_bounds__(kWarps * 32) decode_mma_kernel(PagedAttention p, int HG, int TQ, int nsplit,
                                                                 float* __restrict__ ws) {
  constexpr int NQ = 8 * NT, MT = DV / 16;  // pairs; 16-dim m-tiles of the output
  extern __shared__ __align__(16) unsigned char dsm[];
  __shared__ float s_m[kWarps][NQ], s_l[kWarps][NQ];
  const int D = static_cast<int>(p.D);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
  const int rq = row_pad(D), rk = row_pad(D), rv = row_pad(DV), stage = kKeys * (rk + rv);
  bf16* Qs = reinterpret_cast<bf16*>(dsm);
  bf16* tiles = Qs + NQ * rq;

  int s, tile;
  if (!find_tile_bounded(p.cu_seqlens, static_cast<int>(p.S), TQ, blockIdx.x, &s, &tile)) return;  // block-uniform
  const int G = static_cast<int>(p.nH / p.nKV), hblocks = (G + HG - 1) / HG;
  const int kvh = blockIdx.y / hblocks, h0 = kvh * G + (blockIdx.y % hblocks) * HG, hend = kvh * G + G;
  const int split = blockIdx.z;
  const int row0 = p.cu_seqlens[s], n_s = p.cu_seqlens[s + 1] - row0;
  const int tok0 = tile * TQ, tq_valid = min(TQ, n_s - tok0);
  const int ctx = p.context_lens[s];
  const int pos0 = ctx - n_s + tok0;  // position of the tile's first row; pair i is at pos0 + i / HG
  const int cs = (ctx + nsplit - 1) / nsplit;  // this sequence's keys per split
  const int kbeg = static_cast<int>(imin64(static_cast<int64_t>(split) * cs, ctx));
  const int kend = static_cast<int>(imin64(static_cast<int64_t>(pos0) + tq_valid, static_cast<int64_t>(kbeg) + cs));
  auto live = [&](int i) { return i < HG * TQ && i / HG < tq_valid && h0 + i % HG < hend; };

  // q of the block's pairs as stored (bf16; the scale is applied to the fp32 scores); dead pairs: zeros. 16-byte
  // cp.async copies (all of a thread's in flight at once, and overlapped with the first K/V tile below: a batch-1
  // step is a tile or two a warp, so a chain of dependent loads here would be most of the kernel); rows not 16-byte
  // aligned (ldq % 8 ≠ 0): element loads.
  const bf16* q = static_cast<const bf16*>(p.q);
  auto q_row = [&](int i) {
    return q + static_cast<int64_t>(row0 + tok0 + i / HG) * p.ldq + static_cast<int64_t>(h0 + i % HG) * D;
  };
  if (((reinterpret_cast<uintptr_t>(q) | static_cast<uintptr_t>(p.ldq * 2)) & 15) == 0) {  // block-uniform
    const int cq = D / 8;  // 16-byte copies per q row
    for (int e = threadIdx.x; e < NQ * cq; e += blockDim.x) {
      const int i = e / cq, c = e - i * cq;
      const bool lv = live(i);
      cp_async16(Qs + i * rq + c * 8, lv ? q_row(i) + c * 8 : q, lv);
    }
  } else {
    for (int e = threadIdx.x; e < NQ * D; e += blockDim.x) {
      const int i = e / D, d = e - i * D;
      Qs[i * rq + d] = live(i) ? q_row(i)[d] : __float2bfloat16_rn(0.0f);
    }
  }
  cp_async_commit();  // group of q (empty on the element path); waited for before the loop

  // lane state: pairs 2·t4 + j of n-tile nt (j = 0, 1); acc[mt][nt] = O^T fragment (dims mt·16 + g (+8), those pairs)
  float m[NT][2], l[NT][2], acc[MT][NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      m[nt][j] = -INFINITY;
      l[nt][j] = 0.0f;
    }
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[mt][nt][c] = 0.0f;
  }
  const bf16* kpool = static_cast<const bf16*>(p.k_pool);
  const bf16* vpool = static_cast<const bf16*>(p.v_pool);
  const int64_t vts = p.v_token_stride ? p.v_token_stride : p.nKV * p.Dv;
  const int32_t* pt = p.page_table + static_cast<int64_t>(s) * p.max_pages;
  const int ps = static_cast<int>(p.page_size);
  bf16* mine = tiles + static_cast<size_t>(w) * kStages * stage;
  const int kq = lane & 15;
  constexpr int EV = 8;                 // bf16 per 16-byte copy
  const int ck = D / EV, cv = DV / EV;  // copies per K / V row (16·ck a multiple of 32: loops warp-uniform)
  // lane's copies in a tile: e = lane + 32·u -> (key e / ck, chunk e % ck), stepped without a division per copy
  const int k_k0 = lane / ck, k_c0 = lane % ck, k_dk = 32 / ck, k_dc = 32 % ck;
  constexpr int v_dk = 32 / (DV / EV), v_dc = 32 % (DV / EV);

  // cache slot of key jt + kq (-1 past the block's keys)
  auto slot_of = [&](int jt) { const int j = jt + kq; return j < kend ? pt[j / ps] * ps + j % ps : -1; };
  auto issue = [&](int st, int slot) {
    bf16* kd = mine + st * stage;
    bf16* vd = kd + kKeys * rk;
    for (int e = lane, k = k_k0, c = k_c0; e < kKeys * ck; e += 32) {
      const int sl = __shfl_sync(0xffffffffu, slot, k);
      const bf16* src = sl >= 0 ? kpool + (static_cast<int64_t>(sl) * p.nKV + kvh) * D + c * EV : kpool;
      cp_async16(kd + k * rk + c * EV, src, sl >= 0);
      k += k_dk;
      c += k_dc;
      if (c >= ck) {
        c -= ck;
        ++k;
      }
    }
    for (int e = lane, k = lane / cv, c = lane % cv; e < kKeys * cv; e += 32) {
      const int sl = __shfl_sync(0xffffffffu, slot, k);
      const bf16* src = sl >= 0 ? vpool + static_cast<int64_t>(sl) * vts + static_cast<int64_t>(kvh) * DV + c * EV : vpool;
      cp_async16(vd + k * rv + c * EV, src, sl >= 0);
      k += v_dk;
      c += v_dc;
      if (c >= cv) {
        c -= cv;
        ++k;
      }
    }
  };

  // ldmatrix lane addresses. K (A of the scores, x4): row lane % 16, column half lane / 16. Q (B, x2 / x4: matrices
  // (pairs 0-7, dims 0-7), (0-7, 8-15), (8-15, 0-7), (8-15, 8-15)) and V (A of P·V, x4.trans: (keys 0-7, dims 0-7),
  // (0-7, 8-15), (8-15, 0-7), (8-15, 8-15)): row (lane % 8) + 8·(lane / 16), column half (lane / 8) % 2.
  const int a_row = lane & 15, a_col = (lane >> 4) << 3;
  const int b_row = (lane & 7) + ((lane >> 4) << 3), b_col = ((lane >> 3) & 1) << 3;
  const uint32_t q_addr = smem_addr(Qs + (NT == 2 ? b_row : (lane & 7)) * rq + b_col);
  const float qscale = p.scale * kLog2e;  // scores in log2 units

  const int step = kWarps * kKeys;
  const int j0 = kbeg + w * kKeys;
  if (j0 < kend) issue(0, slot_of(j0));
  cp_async_commit();
  cp_async_wait<1>();  // this thread's q copies have landed (the first tile may still be in flight) ...
  __syncthreads();     // ... and everyone's
  int nslot = j0 + step < kend ? slot_of(j0 + step) : -1;
  int stg = 0;
  for (int jt = j0; jt < kend; jt += step, stg ^= 1) {
    const int jn = jt + step;
    if (jn < kend) issue(stg ^ 1, nslot);
    cp_async_commit();  // (possibly empty group: keeps wait_group<1> meaning "the current tile has landed")
    nslot = jn + step < kend ? slot_of(jn + step) : -1;  // page-table read one tile ahead, used next iteration
    cp_async_wait<1>();
    __syncwarp();
    const bf16* kt = mine + stg * stage;
    const bf16* vt = kt + kKeys * rk;

    // S^T [16 keys][NQ pairs] = K · Q^T, two chains over D
    float sc[NT][4], sc2[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 4; ++c) sc[nt][c] = sc2[nt][c] = 0.0f;
    const uint32_t k_addr = smem_addr(kt + a_row * rk + a_col);
#pragma unroll 2
    for (int d = 0; d < D; d += 32) {
      uint32_t a[4], b[4], a2[4], b2[4];
      ldsm_x4(k_addr + 2 * d, a);
      ldsm_x4(k_addr + 2 * (d + 16), a2);
      if constexpr (NT == 2) {
        ldsm_x4(q_addr + 2 * d, b);
        ldsm_x4(q_addr + 2 * (d + 16), b2);
        mma_bf16(sc[0], a, b[0], b[1]);
        mma_bf16(sc[1], a, b[2], b[3]);
        mma_bf16(sc2[0], a2, b2[0], b2[1]);
        mma_bf16(sc2[1], a2, b2[2], b2[3]);
      } else {
        ldsm_x2(q_addr + 2 * d, b);
        ldsm_x2(q_addr + 2 * (d + 16), b2);
        mma_bf16(sc[0], a, b[0], b[1]);
        mma_bf16(sc2[0], a2, b2[0], b2[1]);
      }
    }

    // online softmax per pair over keys jt + g (c = j) and jt + g + 8 (c = 2 + j); P^T fragments hi / lo
    uint32_t ph[NT][2], pl[NT][2];
    float corr[NT][2];
    bool rescale = false;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      float pv[4];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int i = nt * 8 + 2 * t4 + j;
        const int last = min(kend - 1, pos0 + i / HG);  // the pair's last visible key in this block (causal)
        const float x0 = jt + g <= last ? (sc[nt][j] + sc2[nt][j]) * qscale : -INFINITY;
        const float x1 = jt + g + 8 <= last ? (sc[nt][2 + j] + sc2[nt][2 + j]) * qscale : -INFINITY;
        float tmax = fmaxf(x0, x1);
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 4));
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 8));
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 16));
        const float mnew = fmaxf(m[nt][j], tmax);
        float p0 = 0.0f, p1 = 0.0f, cr = 1.0f;
        if (mnew != -INFINITY) {  // else nothing visible yet: state stays zero
          p0 = exp2f(x0 - mnew);
          p1 = exp2f(x1 - mnew);
          cr = exp2f(m[nt][j] - mnew);  // m = -inf -> 0
        }
        l[nt][j] = l[nt][j] * cr + p0 + p1;
        m[nt][j] = mnew;
        corr[nt][j] = cr;
        rescale |= cr != 1.0f;
        pv[j] = p0;
        pv[2 + j] = p1;
      }
      // C layout (key g | g + 8, pairs 2·t4 + {0,1}) -> B layout of P^T (keys 2·t4 + {0,1} | + 8, pair g)
      uint32_t h01, l01, h23, l23;
      split_bf16(pv[0], pv[1], h01, l01);
      split_bf16(pv[2], pv[3], h23, l23);
      ph[nt][0] = movmatrix_trans(h01);
      ph[nt][1] = movmatrix_trans(h23);
      pl[nt][0] = movmatrix_trans(l01);
      pl[nt][1] = movmatrix_trans(l23);
    }

    // the running max moves in few tiles after the first ones: rescale the accumulators only when it did (warp-uniform)
    if (__any_sync(0xffffffffu, rescale)) {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int j = 0; j < 2; ++j)
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            acc[mt][nt][j] *= corr[nt][j];
            acc[mt][nt][2 + j] *= corr[nt][j];
          }
    }

    // O^T [Dv][NQ] += V^T · P^T (V rows past the keys are zeros, their p = 0)
    const uint32_t v_addr = smem_addr(vt + b_row * rv + b_col);
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      uint32_t a[4];
      ldsm_x4_trans(v_addr + 2 * 16 * mt, a);
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        mma_bf16(acc[mt][nt], a, ph[nt][0], ph[nt][1]);
        mma_bf16(acc[mt][nt], a, pl[nt][0], pl[nt][1]);
      }
    }
    __syncwarp();  // this stage is refilled by the next iteration's issue
  }
  cp_async_wait<0>();
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int j = 0; j < 2; ++j) {  // a pair's sum over its 8 lanes (g)
      l[nt][j] += __shfl_xor_sync(0xffffffffu, l[nt][j], 4);
      l[nt][j] += __shfl_xor_sync(0xffffffffu, l[nt][j], 8);
      l[nt][j] += __shfl_xor_sync(0xffffffffu, l[nt][j], 16);
    }
  __syncthreads();  // all warps are done with their stages: reuse them for the merge
  constexpr int ro = DV + 4;                    // row stride: the 32 lanes' stores hit 32 banks
  float* Os = reinterpret_cast<float*>(tiles);  // [kWarps][NQ][ro]
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int i = nt * 8 + 2 * t4 + j;
      float* orow = Os + (w * NQ + i) * ro + g;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        orow[mt * 16] = acc[mt][nt][j];
        orow[mt * 16 + 8] = acc[mt][nt][2 + j];
      }
      if (g == 0) {
        s_m[w][i] = m[nt][j];
        s_l[w][i] = l[nt][j];
      }
    }
  __syncthreads();
  for (int e = threadIdx.x; e < NQ * DV; e += blockDim.x) {
    const int i = e / DV, c = e - i * DV;
    if (live(i))
      merge_warps_store<bf16, NQ>(p, kWarps, s_m, s_l, Os, ro, i, c, DV, row0 + tok0, h0, HG, nsplit, split, ws);
  }
}

// Block-wide max / sum of one value per thread (blockDim.x = kMergeThreads)
constexpr int kMergeThreads = 256;
template <bool kMax>
__device__ float block_reduce(float v, float* red) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float x = __shfl_xor_sync(0xffffffffu, v, o);
    v = kMax ? fmaxf(v, x) : v + x;
  }
  __syncthreads();  // red is reused between calls
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  v = red[0];
  for (int u = 1; u < kMergeThreads / 32; ++u) v = kMax ? fmaxf(v, red[u]) : v + red[u];
  return v;
}

// One block per (row, head): o = Σ_z 2^{lse_z − M} o_z / Σ_z 2^{lse_z − M}. Thread = (4 columns, one of ZG groups of
// splits): the nsplit partial rows are read ZG at a time in parallel (a batch-1 step has up to 32 splits and few
// blocks, so latency is what counts). Every row of a sequence has all its nsplit entries (empty splits: lse = -inf,
// zeros); rows past cu_seqlens[S] are left alone.
template <int DV>
__global__ void __launch_bounds__(kMergeThreads) decode_mma_merge(PagedAttention p, int nsplit, const float* __restrict__ ws) {
  constexpr int C4 = DV / 4, ZG = kMergeThreads / C4;
  __shared__ float red[kMergeThreads / 32];
  __shared__ float4 part[kMergeThreads];
  const int64_t t = blockIdx.x, h = blockIdx.y;
  if (t < p.cu_seqlens[0] || t >= p.cu_seqlens[p.S]) return;  // block-uniform
  const int64_t base = (t * p.nH + h) * nsplit;
  const float* lse = ws + p.T * p.nH * nsplit * DV + base;
  float mx = -INFINITY;
  for (int z = threadIdx.x; z < nsplit; z += kMergeThreads) mx = fmaxf(mx, lse[z]);
  const float M = block_reduce<true>(mx, red);
  float sum = 0.0f;
  if (M != -INFINITY)
    for (int z = threadIdx.x; z < nsplit; z += kMergeThreads) sum += exp2f(lse[z] - M);
  const float den = block_reduce<false>(sum, red);
  const int c4 = threadIdx.x % C4, zg = threadIdx.x / C4;
  float4 a = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  if (M != -INFINITY) {
    const float4* o4 = reinterpret_cast<const float4*>(ws) + base * C4 + c4;
#pragma unroll 4
    for (int z = zg; z < nsplit; z += ZG) {
      const float f = exp2f(lse[z] - M);
      const float4 v = o4[static_cast<int64_t>(z) * C4];
      a.x += f * v.x;
      a.y += f * v.y;
      a.z += f * v.z;
      a.w += f * v.w;
    }
  }
  part[threadIdx.x] = a;
  __syncthreads();
  if (zg != 0) return;
  for (int u = 1; u < ZG; ++u) {
    const float4 v = part[u * C4 + c4];
    a.x += v.x;
    a.y += v.y;
    a.z += v.z;
    a.w += v.w;
  }
  const float r = den > 0.0f ? 1.0f / den : 0.0f;
  bf16* o = static_cast<bf16*>(p.o) + t * p.ldo + h * DV + 4 * c4;
  o[0] = __float2bfloat16_rn(a.x * r);
  o[1] = __float2bfloat16_rn(a.y * r);
  o[2] = __float2bfloat16_rn(a.z * r);
  o[3] = __float2bfloat16_rn(a.w * r);
}

int pow2ceil(int x) {
  int r = 1;
  while (r < x) r <<= 1;
  return r;
}

// Pairs per block and rows per tile: HG = min(G, NQ) heads; decode steps (T ≤ S, ~one row a sequence) one row a
// block, else as many rows of a sequence as fit (speculative / multi-token steps then read K/V once per TQ rows).
struct Tiling {
  int HG, TQ, hblocks;
};
Tiling tiling(const PagedAttention& p, int NQ) {
  const int G = static_cast<int>(p.nH / p.nKV), HG = G < NQ ? G : NQ;
  const int TQ = p.T <= p.S ? 1 : NQ / pow2ceil(HG);
  return {HG, TQ < 1 ? 1 : TQ, (G + HG - 1) / HG};
}

template <int DV, int NT>
cudaError_t launch(const PagedAttention& p, int64_t nsplit, float* ws, cudaStream_t stream) {
  const size_t smem = smem_bytes<DV, NT>(static_cast<int>(p.D));
  // raise the dynamic shared memory limit once per instantiation and size (not a stream operation: fine inside a
  // graph capture once configured)
  static size_t configured = 0;
  if (smem > configured) {
    const cudaError_t e =
        cudaFuncSetAttribute(decode_mma_kernel<DV, NT>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    configured = smem;
  }
  const Tiling tl = tiling(p, 8 * NT);
  // row tiles: find_tile_bounded's bound T / TQ + S (spare tiles exit at once)
  const dim3 grid(static_cast<unsigned>(p.T / tl.TQ + p.S), static_cast<unsigned>(p.nKV * tl.hblocks),
                  static_cast<unsigned>(nsplit));
  decode_mma_kernel<DV, NT><<<grid, kWarps * 32, smem, stream>>>(p, tl.HG, tl.TQ, static_cast<int>(nsplit), ws);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess || nsplit == 1) return e;
  decode_mma_merge<DV><<<dim3(static_cast<unsigned>(p.T), static_cast<unsigned>(p.nH)), kMergeThreads, 0, stream>>>(
      p, static_cast<int>(nsplit), ws);
  return cudaGetLastError();
}

int nt_of(int64_t Dv) { return Dv == 256 ? 1 : 2; }  // 64 accumulators a lane: (Dv / 16)·NT·4
}  // namespace

bool attention_decode_mma_ok(DType dt, const PagedAttention& p) {
  const auto a16 = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  return dt == DType::bf16 && p.nKV > 0 && p.nH % p.nKV == 0 && p.D % 32 == 0 && p.D > 0 && p.D <= 256 &&
         (p.Dv == 64 || p.Dv == 128 || p.Dv == 256) && p.page_size > 0 && (p.v_token_stride * 2) % 16 == 0 &&
         a16(p.k_pool) && a16(p.v_pool);
}

int64_t attention_decode_mma_splits(const PagedAttention& p, int64_t max_context) {
  if (p.T <= 0 || p.S <= 0 || p.nKV <= 0 || max_context <= 0) return 1;
  static int sms = 0;
  if (sms == 0) {
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        sms <= 0)
      sms = 132;
  }
  const int NT = nt_of(p.Dv);
  const int D = static_cast<int>(p.D);
  const size_t smem = p.Dv == 64 ? smem_bytes<64, 2>(D) : p.Dv == 128 ? smem_bytes<128, 2>(D) : smem_bytes<256, 1>(D);
  // blocks an SM holds: 227 KB of shared memory (1 KB reserved a block), ≤ 4 by registers (≤ 128 a thread)
  int64_t per_sm = static_cast<int64_t>((227 * 1024) / (smem + 1024 + 2 * sizeof(float) * kWarps * 16));
  per_sm = per_sm < 1 ? 1 : per_sm > 4 ? 4 : per_sm;
  const Tiling tl = tiling(p, 8 * NT);
  const int64_t rows = tl.TQ == 1 ? p.T : (p.T + tl.TQ - 1) / tl.TQ;
  const int64_t base = rows * p.nKV * tl.hblocks, wave = sms * per_sm;
  int64_t nmax = (max_context + 31) / 32;
  nmax = nmax < 1 ? 1 : nmax > kMaxSplits ? kMaxSplits : nmax;
  // fraction of the waves' block slots used, a split grid paying ~7% for its merge kernel and partial outputs; the
  // fewest splits within 3% of the best (every split adds partial outputs to write and merge: 17 splits of a 512-block
  // batch-64 grid were measured slower than the old kernel's 2)
  const auto eff = [&](int64_t n) {
    const int64_t blocks = base * n, waves = (blocks + wave - 1) / wave;
    return static_cast<double>(blocks) / static_cast<double>(waves * wave) * (n == 1 ? 1.0 : 0.93);
  };
  double best = 0.0;
  for (int64_t n = 1; n <= nmax; ++n) best = eff(n) > best ? eff(n) : best;
  for (int64_t n = 1; n <= nmax; ++n)
    if (eff(n) >= 0.97 * best) return n;
  return 1;
}

cudaError_t attention_decode_mma(const PagedAttention& p, int64_t nsplit, float* ws, cudaStream_t stream) {
  if (p.T == 0 || p.S == 0) return cudaSuccess;
  if (!attention_decode_mma_ok(DType::bf16, p) || nsplit < 1 || nsplit > 65535 || (nsplit > 1 && ws == nullptr))
    return cudaErrorInvalidValue;
  switch (p.Dv) {
    case 64: return launch<64, 2>(p, nsplit, ws, stream);
    case 128: return launch<128, 2>(p, nsplit, ws, stream);
    case 256: return launch<256, 1>(p, nsplit, ws, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace hylora::cuda
