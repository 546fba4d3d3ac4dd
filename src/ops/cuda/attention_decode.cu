// Split-KV paged attention decode (see attention_decode.h). Decode is bound by reading the K/V cache, so the kernel
// is built to keep many bytes in flight and to read each byte once:
//  - block = (row tile of TQ new rows of one sequence) × (HG query heads of one KV head) × (key split z). Its NQ
//    "pairs" (row, head), NQ = pow2 ≥ TQ·HG, share every key and value it loads.
//  - each warp is an independent pipeline over 16-key tiles of the split (warp w takes tiles w, w+nw, ...): K and V
//    rows go global -> shared memory with cp.async (16-byte copies, zero-filled past the keys), two stages per warp,
//    the page-table entries of a tile read one tile ahead; only __syncwarp inside the loop.
//  - scores: lane = (key k = lane & 15, half = lane >> 4) dots its half of D for all NQ pairs (q pre-scaled by
//    scale·log2 e, fp32 in shared memory), one shuffle joins the halves; online softmax in base 2 per pair (running
//    max m, sum l); p·V with lane owning output columns [lane·VPL, lane·VPL + VPL), VPL = Dv / 32.
//  - the warps' (m, l, acc) merge through shared memory; nsplit == 1 writes o, else the normalised partial output and
//    lse2 = m + log2 l go to the workspace and decode_combine merges: o = Σ_z 2^{lse_z − M} o_z / Σ_z 2^{lse_z − M}.
// All math in fp32; K/V/q/o of type T (fp32 or bf16).
#include "ops/cuda/attention_decode.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/decode_merge.cuh"

#include <cmath>

namespace hylora::cuda {
using namespace detail;

namespace {
constexpr int kKT = 16;                      // keys per warp tile (2 lanes per key)
constexpr int kMaxWarps = 4;                 // warps per block (fewer when a warp's stages need more smem)
constexpr int kBlockSmemBudget = 74 * 1024;  // per block: 3 blocks fit in an H100/H200 SM's 228 KB
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  const int n = valid ? 16 : 0;  // 0 source bytes: the 16 bytes are zero-filled
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(n) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// N consecutive elements (N·sizeof(T) bytes, aligned to that size up to 16) from shared memory as floats.
template <int N>
__device__ __forceinline__ void lds(const float* p, float* v) {
  if constexpr (N == 2) {
    const float2 a = *reinterpret_cast<const float2*>(p);
    v[0] = a.x;
    v[1] = a.y;
  } else {
#pragma unroll
    for (int u = 0; u < N; u += 4) {
      const float4 a = *reinterpret_cast<const float4*>(p + u);
      v[u] = a.x;
      v[u + 1] = a.y;
      v[u + 2] = a.z;
      v[u + 3] = a.w;
    }
  }
}
template <int N>
__device__ __forceinline__ void lds(const __nv_bfloat16* p, float* v) {
  static_assert(N == 2 || N == 4 || N == 8, "bf16 vector of 2, 4 or 8");
  __nv_bfloat162 h[N / 2];
  if constexpr (N == 2) {
    *reinterpret_cast<unsigned*>(h) = *reinterpret_cast<const unsigned*>(p);
  } else if constexpr (N == 4) {
    *reinterpret_cast<uint2*>(h) = *reinterpret_cast<const uint2*>(p);
  } else {
    *reinterpret_cast<uint4*>(h) = *reinterpret_cast<const uint4*>(p);
  }
#pragma unroll
  for (int u = 0; u < N / 2; ++u) {
    const float2 f = __bfloat1622float2(h[u]);
    v[2 * u] = f.x;
    v[2 * u + 1] = f.y;
  }
}

// Shared memory per block: Qs [NQ][D + 8] fp32 (the second half of a row starts 4 floats later: the two half-warps
// read their q halves from different banks), then per warp 2 stages of {K [16][D + pad], V [16][Dv + pad]} (type T,
// pad = 16 bytes against bank conflicts of the lane-per-key reads); after the loop the stage memory is reused for
// the warps' accumulators [nw][NQ][Dv] fp32.
__host__ __device__ inline int row_q(int D) { return D + 8; }
template <typename T>
__host__ __device__ inline int row_k(int D) { return D + 16 / static_cast<int>(sizeof(T)); }
template <typename T>
__host__ __device__ inline int row_v(int Dv) { return Dv + 16 / static_cast<int>(sizeof(T)); }

template <typename T, int NQ, int VPL>
__global__ void __launch_bounds__(kMaxWarps * 32, 1) decode_kernel(PagedAttention p, int HG, int TQ, int chunk,
                                                               float* __restrict__ ws) {
  extern __shared__ __align__(16) unsigned char dsm[];
  __shared__ float s_m[kMaxWarps][NQ], s_l[kMaxWarps][NQ];
  const int D = static_cast<int>(p.D), Dv = static_cast<int>(p.Dv);
  const int nw = blockDim.x >> 5, lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int rsk = row_k<T>(D), rsv = row_v<T>(Dv), stage = kKT * (rsk + rsv);
  float* Qs = reinterpret_cast<float*>(dsm);
  const int rsq = row_q(D);
  T* tiles = reinterpret_cast<T*>(Qs + NQ * rsq);

  int s, tile;
  if (!find_tile_bounded(p.cu_seqlens, static_cast<int>(p.S), TQ, blockIdx.x, &s, &tile)) return;  // block-uniform
  const int G = static_cast<int>(p.nH / p.nKV), hblocks = (G + HG - 1) / HG;
  const int kvh = blockIdx.y / hblocks, h0 = kvh * G + (blockIdx.y % hblocks) * HG, hend = kvh * G + G;
  const int split = blockIdx.z, nsplit = gridDim.z;
  const int row0 = p.cu_seqlens[s], n_s = p.cu_seqlens[s + 1] - row0;
  const int tok0 = tile * TQ, tq_valid = min(TQ, n_s - tok0);
  const int pos0 = p.context_lens[s] - n_s + tok0;  // position of the tile's first row; pair i is at pos0 + i / HG
  const int kbeg = split * chunk;
  const int kend = static_cast<int>(imin64(static_cast<int64_t>(pos0) + tq_valid, static_cast<int64_t>(kbeg) + chunk));
  auto live = [&](int i) { return i < HG * TQ && i / HG < tq_valid && h0 + i % HG < hend; };

  // q of the block's pairs, pre-scaled so that scores are in log2 units (dead pairs: zeros)
  const T* q = static_cast<const T*>(p.q);
  const float qscale = p.scale * kLog2e;
  for (int e = threadIdx.x; e < NQ * D; e += blockDim.x) {
    const int i = e / D, d = e - i * D;  // stored at Qs[i * rsq + d (+ 4 in the second half)]
    float v = 0.0f;
    if (live(i))
      v = ld(q + static_cast<int64_t>(row0 + tok0 + i / HG) * p.ldq + static_cast<int64_t>(h0 + i % HG) * D + d) *
          qscale;
    Qs[i * rsq + d + (d >= D / 2 ? 4 : 0)] = v;
  }
  __syncthreads();

  float m[NQ], l[NQ], acc[NQ][VPL];
#pragma unroll
  for (int i = 0; i < NQ; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int c = 0; c < VPL; ++c) acc[i][c] = 0.0f;
  }
  const T* kpool = static_cast<const T*>(p.k_pool);
  const T* vpool = static_cast<const T*>(p.v_pool);
  const int64_t vts = p.v_token_stride ? p.v_token_stride : p.nKV * p.Dv;
  const int32_t* pt = p.page_table + static_cast<int64_t>(s) * p.max_pages;
  const int ps = static_cast<int>(p.page_size);
  T* mine = tiles + static_cast<size_t>(w) * 2 * stage;
  const int kq = lane & 15, half = lane >> 4;
  constexpr int EV = 16 / sizeof(T);  // elements per 16-byte copy
  const int ck = D / EV, cv = Dv / EV;  // copies per K / V row (even: 16·ck is a multiple of 32, loops warp-uniform)

  // cache slot of key jt + kq (-1 past the split's keys)
  auto slot_of = [&](int jt) { const int j = jt + kq; return j < kend ? pt[j / ps] * ps + j % ps : -1; };
  auto issue = [&](int st, int slot) {
    T* kd = mine + st * stage;
    T* vd = kd + kKT * rsk;
    for (int e = lane; e < kKT * ck; e += 32) {
      const int k = e / ck, c = e - k * ck;
      const int sl = __shfl_sync(0xffffffffu, slot, k);
      const T* src = sl >= 0 ? kpool + (static_cast<int64_t>(sl) * p.nKV + kvh) * D + c * EV : kpool;
      cp_async16(kd + k * rsk + c * EV, src, sl >= 0);
    }
    for (int e = lane; e < kKT * cv; e += 32) {
      const int k = e / cv, c = e - k * cv;
      const int sl = __shfl_sync(0xffffffffu, slot, k);
      const T* src = sl >= 0 ? vpool + static_cast<int64_t>(sl) * vts + static_cast<int64_t>(kvh) * Dv + c * EV : vpool;
      cp_async16(vd + k * rsv + c * EV, src, sl >= 0);
    }
  };

  const int step = nw * kKT;
  const int j0 = kbeg + w * kKT;
  if (j0 < kend) issue(0, slot_of(j0));
  cp_async_commit();
  int nslot = j0 + step < kend ? slot_of(j0 + step) : -1;
  int stg = 0;
  for (int jt = j0; jt < kend; jt += step, stg ^= 1) {
    const int jn = jt + step;
    if (jn < kend) issue(stg ^ 1, nslot);
    cp_async_commit();  // (possibly empty group: keeps wait_group<1> meaning "the current tile has landed")
    nslot = jn + step < kend ? slot_of(jn + step) : -1;  // page-table read one tile ahead, used next iteration
    cp_async_wait<1>();
    __syncwarp();
    const T* kt = mine + stg * stage;
    const T* vt = kt + kKT * rsk;
    // scores of key kq over this lane's half of the dimensions, all pairs
    float sc[NQ];
#pragma unroll
    for (int i = 0; i < NQ; ++i) sc[i] = 0.0f;
    const T* kr = kt + kq * rsk + half * (D / 2);
    const float* qh = Qs + half * (D / 2 + 4);
    float sc2[NQ];  // second accumulator per pair: two independent FMA chains
#pragma unroll
    for (int i = 0; i < NQ; ++i) sc2[i] = 0.0f;
#pragma unroll 2
    for (int d = 0; d < D / 2; d += 8) {
      float kv[8];
      lds<8>(kr + d, kv);
#pragma unroll
      for (int i = 0; i < NQ; ++i) {
        float qv[8];
        lds<8>(qh + i * rsq + d, qv);
#pragma unroll
        for (int u = 0; u < 8; u += 2) {
          sc[i] = fmaf(qv[u], kv[u], sc[i]);
          sc2[i] = fmaf(qv[u + 1], kv[u + 1], sc2[i]);
        }
      }
    }
#pragma unroll
    for (int i = 0; i < NQ; ++i) sc[i] += sc2[i];
    const int j = jt + kq;
#pragma unroll
    for (int i = 0; i < NQ; ++i) {
      sc[i] += __shfl_xor_sync(0xffffffffu, sc[i], 16);
      const bool valid = j < kend && j <= pos0 + i / HG;
      const float x = valid ? sc[i] : -INFINITY;
      float tmax = x;
#pragma unroll
      for (int o = 8; o > 0; o >>= 1) tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, o));
      const float mnew = fmaxf(m[i], tmax);
      float pe = 0.0f, corr = 1.0f;
      if (mnew != -INFINITY) {  // warp-uniform
        pe = valid ? exp2f(x - mnew) : 0.0f;
        corr = exp2f(m[i] - mnew);  // m = -inf -> 0
      }
      float psum = pe;
#pragma unroll
      for (int o = 8; o > 0; o >>= 1) psum += __shfl_xor_sync(0xffffffffu, psum, o);
      l[i] = l[i] * corr + psum;
      m[i] = mnew;
#pragma unroll
      for (int c = 0; c < VPL; ++c) acc[i][c] *= corr;
      sc[i] = pe;  // lanes k and k + 16 both hold p of key k
    }
    // acc[i][:] += Σ_k p_i[k] · V[k][lane·VPL : lane·VPL + VPL]  (V rows past the keys are zeros, p = 0)
#pragma unroll 4
    for (int k = 0; k < kKT; ++k) {
      float v[VPL];
      lds<VPL>(vt + k * rsv + lane * VPL, v);
#pragma unroll
      for (int i = 0; i < NQ; ++i) {
        const float pk = __shfl_sync(0xffffffffu, sc[i], k);
#pragma unroll
        for (int c = 0; c < VPL; ++c) acc[i][c] = fmaf(pk, v[c], acc[i][c]);
      }
    }
    __syncwarp();  // this stage is refilled by the next iteration's issue
  }
  cp_async_wait<0>();
  __syncthreads();  // all warps are done with their stages: reuse them for the merge
  float* Os = reinterpret_cast<float*>(tiles);  // [nw][NQ][Dv]
#pragma unroll
  for (int i = 0; i < NQ; ++i) {
#pragma unroll
    for (int c = 0; c < VPL; ++c) Os[(w * NQ + i) * Dv + lane * VPL + c] = acc[i][c];
    if (lane == 0) {
      s_m[w][i] = m[i];
      s_l[w][i] = l[i];
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < NQ * Dv; e += blockDim.x) {
    const int i = e / Dv, c = e - i * Dv;
    if (live(i))
      merge_warps_store<T, NQ>(p, nw, s_m, s_l, Os, Dv, i, c, Dv, row0 + tok0, h0, HG, nsplit, split, ws);
  }
}

// One block per (row, head): o = Σ_z 2^{lse_z − M} o_z / Σ_z 2^{lse_z − M}. Every row of a sequence has all its
// nsplit entries written (empty splits with lse = -inf); rows past cu_seqlens[S] are left alone.
template <typename T>
__global__ void decode_combine_kernel(PagedAttention p, int nsplit, const float* __restrict__ ws) {
  const int64_t t = blockIdx.x, h = blockIdx.y;
  if (t < p.cu_seqlens[0] || t >= p.cu_seqlens[p.S]) return;
  const int64_t base = (t * p.nH + h) * nsplit;
  const float* lse = ws + p.T * p.nH * nsplit * p.Dv + base;
  float M = -INFINITY;
  for (int z = 0; z < nsplit; ++z) M = fmaxf(M, lse[z]);
  float den = 0.0f;
  if (M != -INFINITY)
    for (int z = 0; z < nsplit; ++z) den += exp2f(lse[z] - M);
  T* o = static_cast<T*>(p.o) + t * p.ldo + h * p.Dv;
  for (int64_t c = threadIdx.x; c < p.Dv; c += blockDim.x) {
    float num = 0.0f;
    if (M != -INFINITY)
      for (int z = 0; z < nsplit; ++z) num += exp2f(lse[z] - M) * ws[(base + z) * p.Dv + c];
    st(o + c, den > 0.0f ? num / den : 0.0f);
  }
}

int pow2ceil(int x) {
  int r = 1;
  while (r < x) r <<= 1;
  return r;
}

template <typename T, int NQ, int VPL>
cudaError_t launch(const PagedAttention& p, int HG, int TQ, int64_t nsplit, int64_t chunk, float* ws,
                   cudaStream_t stream) {
  const int D = static_cast<int>(p.D), Dv = static_cast<int>(p.Dv);
  const size_t qbytes = sizeof(float) * NQ * row_q(D);
  const size_t per_warp = 2 * kKT * sizeof(T) * (row_k<T>(D) + row_v<T>(Dv));
  const size_t fixed = qbytes + 2 * sizeof(float) * kMaxWarps * NQ + 1024;  // + static smem + the per-block reserve
  size_t nw = kBlockSmemBudget > fixed ? (kBlockSmemBudget - fixed) / per_warp : 1;
  nw = nw < 1 ? 1 : nw > kMaxWarps ? kMaxWarps : nw;
  const size_t merge = nw * NQ * Dv * sizeof(float);
  const size_t smem = qbytes + (nw * per_warp > merge ? nw * per_warp : merge);
  // raise the dynamic shared memory limit once per instantiation and size (not a stream operation: fine inside a
  // graph capture once configured)
  static size_t configured = 0;
  if (smem > configured) {
    const cudaError_t e = cudaFuncSetAttribute(decode_kernel<T, NQ, VPL>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    configured = smem;
  }
  const int G = static_cast<int>(p.nH / p.nKV), hblocks = (G + HG - 1) / HG;
  // row tiles: find_tile_bounded's bound T / TQ + S (spare tiles exit at once)
  const dim3 grid(static_cast<unsigned>(p.T / TQ + p.S), static_cast<unsigned>(p.nKV * hblocks),
                  static_cast<unsigned>(nsplit));
  decode_kernel<T, NQ, VPL><<<grid, static_cast<unsigned>(nw * 32), smem, stream>>>(p, HG, TQ, static_cast<int>(chunk),
                                                                                   ws);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess || nsplit == 1) return e;
  decode_combine_kernel<T><<<dim3(static_cast<unsigned>(p.T), static_cast<unsigned>(p.nH)), 64, 0, stream>>>(
      p, static_cast<int>(nsplit), ws);
  return cudaGetLastError();
}

template <typename T, int VPL>
cudaError_t launch_nq(const PagedAttention& p, int HG, int TQ, int NQ, int64_t nsplit, int64_t chunk, float* ws,
                      cudaStream_t stream) {
  switch (NQ) {
    case 1: return launch<T, 1, VPL>(p, HG, TQ, nsplit, chunk, ws, stream);
    case 2: return launch<T, 2, VPL>(p, HG, TQ, nsplit, chunk, ws, stream);
    case 4: return launch<T, 4, VPL>(p, HG, TQ, nsplit, chunk, ws, stream);
    case 8: return launch<T, 8, VPL>(p, HG, TQ, nsplit, chunk, ws, stream);
    default:
      if constexpr (VPL <= 4) return launch<T, 16, VPL>(p, HG, TQ, nsplit, chunk, ws, stream);
      return cudaErrorInvalidValue;
  }
}

template <typename T>
cudaError_t launch_any(const PagedAttention& p, int64_t nsplit, int64_t chunk, float* ws, cudaStream_t stream) {
  // pairs per block: NQ·VPL accumulators per lane ≤ 64 (no spills): Dv 256 -> 8 pairs, Dv ≤ 128 -> 16
  const int VPL = static_cast<int>(p.Dv / 32), pmax = VPL == 8 ? 8 : 16;
  const int G = static_cast<int>(p.nH / p.nKV), HG = G < pmax ? G : pmax;
  // T ≤ S: a decode step, ~1 row per sequence (any layout stays correct, rows of one sequence then take separate
  // blocks); else rows of a sequence share a block (speculative / multi-token steps read K/V once per TQ rows)
  const int TQ = p.T <= p.S ? 1 : pmax / pow2ceil(HG);
  const int NQ = pow2ceil(HG * TQ);
  switch (VPL) {
    case 2: return launch_nq<T, 2>(p, HG, TQ, NQ, nsplit, chunk, ws, stream);
    case 4: return launch_nq<T, 4>(p, HG, TQ, NQ, nsplit, chunk, ws, stream);
    case 8: return launch_nq<T, 8>(p, HG, TQ, NQ, nsplit, chunk, ws, stream);
    default: return cudaErrorInvalidValue;
  }
}
}  // namespace

bool attention_decode_split_ok(DType dt, const PagedAttention& p) {
  const int64_t es = static_cast<int64_t>(dtype_size(dt));
  const auto a16 = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  return p.nKV > 0 && p.nH % p.nKV == 0 && p.D % 32 == 0 && p.D > 0 && p.D <= 256 &&
         (p.Dv == 64 || p.Dv == 128 || p.Dv == 256) && p.page_size > 0 && (p.v_token_stride * es) % 16 == 0 &&
         a16(p.k_pool) && a16(p.v_pool);
}

cudaError_t attention_decode_split(DType dt, const PagedAttention& p, int64_t nsplit, int64_t chunk, float* ws,
                                   cudaStream_t stream) {
  if (p.T == 0 || p.S == 0) return cudaSuccess;
  if (!attention_decode_split_ok(dt, p) || nsplit < 1 || chunk < 1 || (nsplit > 1 && ws == nullptr) ||
      (nsplit - 1) * chunk >= (int64_t{1} << 31))
    return cudaErrorInvalidValue;
  if (nsplit == 1 && chunk > (int64_t{1} << 30)) chunk = int64_t{1} << 30;  // one split: every key (int in-kernel)
  return dt == DType::f32 ? launch_any<float>(p, nsplit, chunk, ws, stream)
                          : launch_any<__nv_bfloat16>(p, nsplit, chunk, ws, stream);
}

}  // namespace hylora::cuda
