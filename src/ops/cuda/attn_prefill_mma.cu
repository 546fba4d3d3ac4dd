// bf16 paged-attention prefill, FlashAttention-2 style on mma.sync.m16n8k16 (bf16 in, fp32 accumulation).
//
// Block = 4 warps = 64 query rows of one (sequence, head); warp w owns rows 16w..16w+15. Grid = (query tiles) × nH,
// head fastest (the heads of one GQA group read the same K/V tiles at about the same time, so they hit in L2) and
// tiles in reverse order (the longest causal rows start first). Per tile of kN keys (gathered through the page table):
//   S = Q Kᵀ          mma, fp32 accumulators in registers (16 rows × kN keys per warp: kN/2 floats a lane)
//   causal mask       only on tiles that reach past the warp's first row; tiles past its last row are skipped
//   online softmax    row max/sum in registers, reduced over the 4 lanes of a quad (a row lives in one quad),
//                     exp2 with scale·log2(e) folded in; O and the partial row sum rescaled in registers
//   O += P V          P converted to bf16 straight from the S accumulators (the C layout of m16n8 equals the A
//                     layout of m16k16), V fragments by ldmatrix.trans; O: 16 × Dv fp32 per warp (Dv/2 a lane)
// Pipeline (single K and V buffers, cp.async): the V tile loads while S and the softmax run, the next K tile loads
// while P V runs. Shared memory rows are padded by 16 bytes (row stride ≡ odd number of 16-byte chunks mod 128 B),
// so the 8 row addresses of every ldmatrix hit distinct banks. Q stays in shared memory and is re-read per tile
// (keeping it in registers would not fit next to O for D = 256).
// Slots (page_table[s][j / page_size] · page_size + j % page_size; −1 past the block's keys, zero-filled) are
// computed once per tile (one key per thread) into a double-buffered shared table, two tiles ahead of their use.
#include <cuda_bf16.h>

#include <cmath>

#include "ops/cuda/attn_prefill_mma.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/mma_sm80.cuh"

namespace hylora::cuda {
using namespace detail;

namespace {
using bf16 = __nv_bfloat16;
constexpr int kM = 64, kThreads = 128;

__device__ __forceinline__ float ex2(float x) {  // 2^x, ex2(−inf) = 0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

template <int D, int DV, int kN>
struct Cfg {
  static constexpr int QS = D + 8, VS = DV + 8;  // padded shared-memory row strides (elements)
  static constexpr size_t smem = sizeof(bf16) * (size_t{kM} * QS + size_t{kN} * QS + size_t{kN} * VS);
  // blocks per SM the launch bounds ask for (registers ≤ 65536 / (128 · minb)), the most that ptxas fits without
  // spills (CUDA 13, sm_90a): D 64 → 128 registers, D 96 → 166, D 128 → 202, D 192 → 251 (192/128: 245),
  // D 256 → 243; 32-key variants: D 128 → 160 (3 blocks), D 64 → 120. Shared memory allows at least as many
  // (D 256, kN 32: 68 KB a block; D 128: 52 KB).
  static constexpr int minb = D > 128 ? 2 : D == 128 ? (kN == 32 ? 3 : 2) : (D >= 96 ? 3 : 4);
};

template <int D, int DV, int kN>
__global__ void __launch_bounds__(kThreads, Cfg<D, DV, kN>::minb)
    attn_prefill_mma_kernel(PagedAttention p, int64_t qtiles) {
  static_assert(D % 16 == 0 && DV % 16 == 0 && kN % 16 == 0, "mma tiles");
  using C = Cfg<D, DV, kN>;
  constexpr int QS = C::QS, VS = C::VS;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* Qs = reinterpret_cast<bf16*>(smem_raw);  // [kM][QS]
  bf16* Ks = Qs + kM * QS;                         // [kN][QS]
  bf16* Vs = Ks + kN * QS;                         // [kN][VS]
  __shared__ int s_slot[2][kN];

  const int nH = static_cast<int>(p.nH);
  const int h = static_cast<int>(blockIdx.x % nH);
  const int64_t tb = qtiles - 1 - static_cast<int64_t>(blockIdx.x / nH);
  int s, tile;
  if (!find_tile_bounded(p.cu_seqlens, static_cast<int>(p.S), kM, tb, &s, &tile)) return;
  const int kvh = h / (nH / static_cast<int>(p.nKV));
  const int n_s = p.cu_seqlens[s + 1] - p.cu_seqlens[s], ctx = p.context_lens[s];
  const int pos_base = ctx - n_s, tok0 = tile * kM, nq = min(kM, n_s - tok0);
  const int64_t row0 = p.cu_seqlens[s] + tok0;
  const int kend = pos_base + tok0 + nq;  // keys 0 .. the block's last position
  const int nkt = (kend + kN - 1) / kN;
  const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5, g = lane >> 2, t4 = lane & 3;
  const int32_t* pt = p.page_table + static_cast<int64_t>(s) * p.max_pages;
  const int ps = static_cast<int>(p.page_size);
  const bf16* kpool = static_cast<const bf16*>(p.k_pool);
  const bf16* vpool = static_cast<const bf16*>(p.v_pool);
  const int64_t kts = p.nKV * D, vts = p.v_token_stride ? p.v_token_stride : p.nKV * DV;
  const bf16* kbase = kpool + static_cast<int64_t>(kvh) * D;
  const bf16* vbase = vpool + static_cast<int64_t>(kvh) * DV;

  auto slot_of = [&](int kt) {  // cache slot of key kt·kN + tid (thread tid < kN), −1 past the block's keys
    const int j = kt * kN + tid;
    return j < kend ? pt[j / ps] * ps + j % ps : -1;
  };
  auto fill_slots = [&](int kt) {
    if (tid < kN) s_slot[kt & 1][tid] = slot_of(kt);
  };
  auto load_k = [&](int kt) {
    constexpr int CH = D / 8;
    const int* sl = s_slot[kt & 1];
    static_assert(kN * CH % kThreads == 0, "whole chunks per thread");
#pragma unroll
    for (int i = 0; i < kN * CH / kThreads; ++i) {
      const int e = tid + i * kThreads, r = e / CH, c = (e % CH) * 8, slot = sl[r];
      cp_async16(smem_addr(Ks + r * QS + c), slot >= 0 ? kbase + slot * kts + c : kpool, slot >= 0);
    }
  };
  auto load_v = [&](int kt) {
    constexpr int CH = DV / 8;
    const int* sl = s_slot[kt & 1];
    static_assert(kN * CH % kThreads == 0, "whole chunks per thread");
#pragma unroll
    for (int i = 0; i < kN * CH / kThreads; ++i) {
      const int e = tid + i * kThreads, r = e / CH, c = (e % CH) * 8, slot = sl[r];
      cp_async16(smem_addr(Vs + r * VS + c), slot >= 0 ? vbase + slot * vts + c : vpool, slot >= 0);
    }
  };

  // prologue: Q, slots of tiles 0 and 1, K tile 0
  fill_slots(0);
  {
    constexpr int CH = D / 8;
    const bf16* q = static_cast<const bf16*>(p.q) + static_cast<int64_t>(h) * D;
    static_assert(kM * CH % kThreads == 0, "whole chunks per thread");
#pragma unroll
    for (int i = 0; i < kM * CH / kThreads; ++i) {
      const int e = tid + i * kThreads, r = e / CH, c = (e % CH) * 8;
      cp_async16(smem_addr(Qs + r * QS + c), r < nq ? q + (row0 + r) * p.ldq + c : q, r < nq);
    }
  }
  __syncthreads();  // slots(0)
  load_k(0);
  cp_async_commit();
  if (nkt > 1) fill_slots(1);

  float o[DV / 8][4];
#pragma unroll
  for (int i = 0; i < DV / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // m in the log2 domain (scaled); l: this lane's part
  const float sl2 = p.scale * 1.4426950408889634f;
  const int wfirst = pos_base + tok0 + w * 16;  // position of the warp's first row
  const int pos_g = wfirst + g;                 // rows g and g + 8 of the warp
  const bool wlive = w * 16 < nq;
  // ldmatrix lane addresses (see the fragment layouts of m16n8k16): A (Q) rows lane%16, column half lane/16;
  // B from K (non-transposed): keys (lane%8) + 8·(lane/16), d half (lane/8)%2; B from V (transposed): keys
  // (lane%8) + 8·((lane/8)%2), dv half lane/16.
  const uint32_t q_lane = smem_addr(Qs + (w * 16 + (lane & 15)) * QS + (lane >> 4) * 8);
  const uint32_t k_lane = smem_addr(Ks + ((lane & 7) + ((lane >> 4) << 3)) * QS + ((lane >> 3) & 1) * 8);
  const uint32_t v_lane = smem_addr(Vs + ((lane & 7) + (((lane >> 3) & 1) << 3)) * VS + (lane >> 4) * 8);

  for (int kt = 0; kt < nkt; ++kt) {
    cp_async_wait<0>();
    __syncthreads();  // K(kt) (and Q) visible; every warp is done with V(kt − 1)
    load_v(kt);
    cp_async_commit();
    // page-table read for tile kt + 2 now, stored after the next barrier: its latency hides behind S = Q Kᵀ
    const int slot_ahead = tid < kN && kt + 2 < nkt ? slot_of(kt + 2) : -1;
    const int j0 = kt * kN;
    const bool active = wlive && j0 <= wfirst + 15;  // some key of the tile is visible to some row of the warp
    float sacc[kN / 8][4];
#pragma unroll
    for (int i = 0; i < kN / 8; ++i) sacc[i][0] = sacc[i][1] = sacc[i][2] = sacc[i][3] = 0.0f;
    if (active) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t a[4];
        ldsm_x4(q_lane + kk * 32, a);
#pragma unroll
        for (int np = 0; np < kN / 16; ++np) {
          uint32_t b[4];
          ldsm_x4(k_lane + (np * 16 * QS + kk * 16) * 2, b);
          mma_bf16(sacc[2 * np], a, b[0], b[1]);
          mma_bf16(sacc[2 * np + 1], a, b[2], b[3]);
        }
      }
      if (j0 + kN - 1 > wfirst) {  // diagonal tile: key j visible to the row at position pos iff j ≤ pos
#pragma unroll
        for (int nt = 0; nt < kN / 8; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            if (j0 + nt * 8 + 2 * t4 + (e & 1) > pos_g + (e >> 1) * 8) sacc[nt][e] = -INFINITY;
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < kN / 8; ++nt) mx = fmaxf(mx, fmaxf(sacc[nt][2 * r], sacc[nt][2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        // key 0 is visible to every row and tile 0 always runs, so m is finite from the first tile on
        const float mnew = fmaxf(m[r], mx * sl2);
        const float corr = ex2(m[r] - mnew);  // first tile: ex2(−inf) = 0
        m[r] = mnew;
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kN / 8; ++nt) {
          sacc[nt][2 * r] = ex2(fmaf(sacc[nt][2 * r], sl2, -mnew));
          sacc[nt][2 * r + 1] = ex2(fmaf(sacc[nt][2 * r + 1], sl2, -mnew));
          sum += sacc[nt][2 * r] + sacc[nt][2 * r + 1];
        }
        l[r] = l[r] * corr + sum;
        if (__any_sync(0xffffffffu, corr != 1.0f)) {  // past the first tiles the row maxima rarely move
#pragma unroll
          for (int i = 0; i < DV / 8; ++i) {
            o[i][2 * r] *= corr;
            o[i][2 * r + 1] *= corr;
          }
        }
      }
    }
    __syncthreads();  // every warp is done with K(kt)
    // slots of tile kt + 2: their buffer's last reader, load_v(kt), is behind the barrier above
    if (tid < kN && kt + 2 < nkt) s_slot[kt & 1][tid] = slot_ahead;
    if (kt + 1 < nkt) {
      load_k(kt + 1);
      cp_async_commit();
      cp_async_wait<1>();  // V(kt) landed (K(kt + 1) may still be in flight)
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // V(kt) visible
    if (active) {
#pragma unroll
      for (int kk = 0; kk < kN / 16; ++kk) {
        const uint32_t a[4] = {pack_bf16(sacc[2 * kk][0], sacc[2 * kk][1]), pack_bf16(sacc[2 * kk][2], sacc[2 * kk][3]),
                               pack_bf16(sacc[2 * kk + 1][0], sacc[2 * kk + 1][1]),
                               pack_bf16(sacc[2 * kk + 1][2], sacc[2 * kk + 1][3])};
#pragma unroll
        for (int np = 0; np < DV / 16; ++np) {
          uint32_t b[4];
          ldsm_x4_trans(v_lane + (kk * 16 * VS + np * 16) * 2, b);
          mma_bf16(o[2 * np], a, b[0], b[1]);
          mma_bf16(o[2 * np + 1], a, b[2], b[3]);
        }
      }
    }
  }
  // O / l, bf16, 4-byte stores (lane holds columns 2·t4, 2·t4 + 1 of each 8-column tile, rows g and g + 8)
  bf16* out = static_cast<bf16*>(p.o) + static_cast<int64_t>(h) * DV + 2 * t4;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float lr = l[r];
    lr += __shfl_xor_sync(0xffffffffu, lr, 1);
    lr += __shfl_xor_sync(0xffffffffu, lr, 2);
    const int row = w * 16 + g + 8 * r;
    if (row >= nq) continue;
    const float inv = lr > 0.0f ? 1.0f / lr : 0.0f;
    bf16* orow = out + (row0 + row) * p.ldo;
#pragma unroll
    for (int i = 0; i < DV / 8; ++i)
      *reinterpret_cast<uint32_t*>(orow + i * 8) = pack_bf16(o[i][2 * r] * inv, o[i][2 * r + 1] * inv);
  }
}

template <int D, int DV, int kN>
cudaError_t launch(const PagedAttention& p, cudaStream_t stream) {
  using C = Cfg<D, DV, kN>;
  static bool configured = false;  // once per instantiation (not a stream operation; skipped inside a capture)
  if (!configured) {
    const cudaError_t e = cudaFuncSetAttribute(attn_prefill_mma_kernel<D, DV, kN>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(C::smem));
    if (e != cudaSuccess) return e;
    configured = true;
  }
  // find_tile_bounded's bound: T / kM + S query tiles (spares exit at once)
  const int64_t qtiles = p.T / kM + p.S;
  attn_prefill_mma_kernel<D, DV, kN>
      <<<static_cast<unsigned>(qtiles * p.nH), kThreads, C::smem, stream>>>(p, qtiles);
  return cudaGetLastError();
}
}  // namespace

bool attention_prefill_mma_supported(const PagedAttention& p) {
  const auto al = [](const void* ptr, uintptr_t a) { return reinterpret_cast<uintptr_t>(ptr) % a == 0; };
  const bool dims = (p.D == p.Dv && (p.D == 64 || p.D == 96 || p.D == 128 || p.D == 192 || p.D == 256)) ||
                    (p.D == 192 && p.Dv == 128);
  return dims && p.nKV > 0 && p.nH % p.nKV == 0 && p.page_size > 0 && p.ldq % 8 == 0 && p.ldo % 2 == 0 &&
         p.v_token_stride % 8 == 0 && al(p.q, 16) && al(p.k_pool, 16) && al(p.v_pool, 16) && al(p.o, 4);
}

cudaError_t attention_prefill_mma(const PagedAttention& p, cudaStream_t stream, int keys_per_tile) {
  if (!attention_prefill_mma_supported(p)) return cudaErrorNotSupported;
  if (p.T == 0 || p.S == 0) return cudaSuccess;
  const bool k32 = keys_per_tile == 32;
  switch (p.D) {
    case 64: return k32 ? launch<64, 64, 32>(p, stream) : launch<64, 64, 64>(p, stream);
    case 96: return launch<96, 96, 64>(p, stream);
    case 128: return k32 ? launch<128, 128, 32>(p, stream) : launch<128, 128, 64>(p, stream);
    case 192: return p.Dv == 128 ? launch<192, 128, 64>(p, stream) : launch<192, 192, 64>(p, stream);
    default: return launch<256, 256, 32>(p, stream);  // kN 64 would spill (O alone is 128 registers)
  }
}

}  // namespace hylora::cuda
