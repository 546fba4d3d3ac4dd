// Paged attention (math in attention.h).
// One kernel serves prefill and split-KV decode. Block = 4 warps, 16 query rows that share a kv head: rows are
// (token, head) pairs, TQ tokens × HG heads of one GQA group (HG = min(group, 16), TQ = 16 / HG); row rr belongs to
// warp rr % 4 (so decode's few rows spread over the warps). For each tile of 32 keys (K padded to D+1 in shared
// memory against bank conflicts), lane j scores key j for the warp's rows, the warp updates each row's running max
// m and sum l (online softmax), rescales its accumulator and adds p·V with lane c owning output columns c, c+32, ...
// Split z of gridDim.z covers keys [z·chunk, (z+1)·chunk); with more than one split the block writes its
// normalised partial output and lse = m + log l to the workspace and attn_combine merges them:
//   o = Σ_z e^{lse_z - M} o_z / Σ_z e^{lse_z - M}.
#include "ops/cuda/attention.h"
#include "ops/cuda/attention_decode.h"
#include "ops/cuda/attention_decode_mma.h"
#include "ops/cuda/attn_prefill_mma.h"
#include "ops/cuda/common.cuh"

#include <mma.h>

#include <cmath>

namespace hylora::cuda {
using namespace detail;

namespace {
constexpr int kRows = 16, kKeys = 32, kWarps = 4;  // output columns per lane: MC (template), Dv ≤ 32·MC

template <typename T>
__global__ void kv_store_kernel(const T* __restrict__ k, int64_t ldk, const T* __restrict__ v, int64_t ldv,
                                const int32_t* __restrict__ kv_slot, T* __restrict__ kp, T* __restrict__ vp,
                                int64_t nKV, int64_t D, int64_t Dv) {
  const int64_t t = blockIdx.x;
  const int32_t slot = kv_slot[t];
  if (slot < 0) return;
  for (int64_t e = threadIdx.x; e < nKV * D; e += blockDim.x) kp[slot * nKV * D + e] = k[t * ldk + e];
  for (int64_t e = threadIdx.x; e < nKV * Dv; e += blockDim.x) vp[slot * nKV * Dv + e] = v[t * ldv + e];
}

// scores of the warp's first NR rows against key `lane` of the tile: sc[i] += Σ_d q_i[d] · K[lane][d]
template <int NR>
__device__ __forceinline__ void tile_scores(const float* kr, const float* q0, int D, float* sc) {
#pragma unroll 4
  for (int d = 0; d < D; ++d) {
    const float kv = kr[d];
#pragma unroll
    for (int i = 0; i < NR; ++i) sc[i] += q0[i * kWarps * D + d] * kv;
  }
}
// acc[i][c] += Σ_j p_i[j] · V[j][lane + 32c] for the warp's first NR rows (p_i[j] held by lane j)
template <int NR, int MC>
__device__ __forceinline__ void tile_pv(const float* Vs, int Dv, int jn, int lane, const float* pr,
                                        float (*acc)[MC]) {
  for (int j = 0; j < jn; ++j) {
    float pj[NR];
#pragma unroll
    for (int i = 0; i < NR; ++i) pj[i] = __shfl_sync(0xffffffffu, pr[i], j);
    const float* vr = Vs + j * Dv;
#pragma unroll
    for (int c = 0; c < MC; ++c) {
      const int col = lane + 32 * c;
      if (col < Dv) {
        const float vv = vr[col];
#pragma unroll
        for (int i = 0; i < NR; ++i) acc[i][c] += pj[i] * vv;
      }
    }
  }
}

template <typename T, int MC>
__global__ void __launch_bounds__(128) attn_kernel(PagedAttention p, int HG, int TQ, int64_t chunk, float* ws,
                                                   bool vec) {
  constexpr int kMaxCols = MC;
  extern __shared__ float smem[];
  const int D = static_cast<int>(p.D), Dv = static_cast<int>(p.Dv);
  float* Qs = smem;                   // [16][D]
  float* Ks = Qs + kRows * D;         // [32][D+1]
  float* Vs = Ks + kKeys * (D + 1);   // [32][Dv]
  __shared__ int s_kvslot[kKeys];

  int s, tile;
  if (!find_tile(p.cu_seqlens, static_cast<int>(p.S), TQ, blockIdx.x, &s, &tile)) return;
  const int gs = static_cast<int>(p.nH / p.nKV);
  const int hblocks = (gs + HG - 1) / HG;
  const int kvh = blockIdx.y / hblocks, h0 = kvh * gs + (blockIdx.y % hblocks) * HG;
  const int hend = kvh * gs + gs;
  const int split = blockIdx.z, nsplit = gridDim.z;
  const int n_s = p.cu_seqlens[s + 1] - p.cu_seqlens[s];
  const int ctx = p.context_lens[s];
  const int tok0 = tile * TQ;  // first local token of the tile
  const int pos_base = ctx - n_s;
  const int tq_valid = min(TQ, n_s - tok0);
  const int last_pos = pos_base + tok0 + tq_valid - 1;
  const int64_t kbeg = static_cast<int64_t>(split) * chunk;
  const int64_t kend = imin64(static_cast<int64_t>(last_pos) + 1, kbeg + chunk);

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  // the warp's rows: rr = warp + 4*i
  int row_t[4], row_h[4], row_pos[4];
  bool row_ok[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int rr = warp + kWarps * i;
    const int tq = rr / HG, hh = rr % HG;
    row_t[i] = p.cu_seqlens[s] + tok0 + tq;
    row_h[i] = h0 + hh;
    row_pos[i] = pos_base + tok0 + tq;
    row_ok[i] = tq < tq_valid && row_h[i] < hend && rr < TQ * HG;
  }
  int iend = 0;  // the warp computes rows 0..iend-1 (rows past the last live one are skipped)
#pragma unroll
  for (int i = 0; i < 4; ++i)
    if (row_ok[i]) iend = i + 1;
  // stage Q
  const T* q = static_cast<const T*>(p.q);
  for (int e = threadIdx.x; e < kRows * D; e += blockDim.x) {
    const int rr = e / D, d = e % D;
    const int tq = rr / HG, h = h0 + rr % HG;
    float val = 0.0f;
    if (tq < tq_valid && h < hend && rr < TQ * HG)
      val = ld(q + static_cast<int64_t>(p.cu_seqlens[s] + tok0 + tq) * p.ldq + static_cast<int64_t>(h) * D + d);
    Qs[rr * D + d] = val;
  }
  float m[4], l[4], acc[4][kMaxCols];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int c = 0; c < kMaxCols; ++c) acc[i][c] = 0.0f;
  }
  const T* kpool = static_cast<const T*>(p.k_pool);
  const T* vpool = static_cast<const T*>(p.v_pool);
  const int64_t vts = p.v_token_stride ? p.v_token_stride : p.nKV * p.Dv;
  const int32_t* pt = p.page_table + static_cast<int64_t>(s) * p.max_pages;
  for (int64_t j0 = kbeg; j0 < kend; j0 += kKeys) {
    __syncthreads();  // previous tile consumed (and Qs staged on the first pass)
    if (threadIdx.x < kKeys) {
      const int64_t j = j0 + threadIdx.x;
      s_kvslot[threadIdx.x] = j < kend ? pt[j / p.page_size] * static_cast<int32_t>(p.page_size) +
                                             static_cast<int32_t>(j % p.page_size)
                                       : -1;
    }
    __syncthreads();
    if (vec) {  // 16-byte loads: D and Dv are multiples of the vector width, pools 16-byte aligned
      constexpr int V = 16 / sizeof(T);
      const int kc = D / V, vc = Dv / V;
      for (int e = threadIdx.x; e < kKeys * kc; e += blockDim.x) {
        const int j = e / kc, d = (e % kc) * V;
        const int sl = s_kvslot[j];
        float v[V];
        if (sl >= 0) {
          ld16(kpool + (static_cast<int64_t>(sl) * p.nKV + kvh) * D + d, v);
        } else {
#pragma unroll
          for (int u = 0; u < V; ++u) v[u] = 0.0f;
        }
#pragma unroll
        for (int u = 0; u < V; ++u) Ks[j * (D + 1) + d + u] = v[u];
      }
      for (int e = threadIdx.x; e < kKeys * vc; e += blockDim.x) {
        const int j = e / vc, d = (e % vc) * V;
        const int sl = s_kvslot[j];
        float v[V];
        if (sl >= 0) {
          ld16(vpool + static_cast<int64_t>(sl) * vts + static_cast<int64_t>(kvh) * Dv + d, v);
        } else {
#pragma unroll
          for (int u = 0; u < V; ++u) v[u] = 0.0f;
        }
#pragma unroll
        for (int u = 0; u < V; ++u) Vs[j * Dv + d + u] = v[u];
      }
    } else {
      for (int e = threadIdx.x; e < kKeys * D; e += blockDim.x) {
        const int j = e / D, d = e % D;
        const int sl = s_kvslot[j];
        Ks[j * (D + 1) + d] = sl >= 0 ? ld(kpool + (static_cast<int64_t>(sl) * p.nKV + kvh) * D + d) : 0.0f;
      }
      for (int e = threadIdx.x; e < kKeys * Dv; e += blockDim.x) {
        const int j = e / Dv, d = e % Dv;
        const int sl = s_kvslot[j];
        Vs[j * Dv + d] = sl >= 0 ? ld(vpool + static_cast<int64_t>(sl) * vts + static_cast<int64_t>(kvh) * Dv + d) : 0.0f;
      }
    }
    __syncthreads();
    const int64_t jkey = j0 + lane;
    float sc[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) sc[i] = 0.0f;
    const float* kr = Ks + lane * (D + 1);
    const float* q0 = Qs + warp * D;
    switch (iend) {
      case 1: tile_scores<1>(kr, q0, D, sc); break;
      case 2: tile_scores<2>(kr, q0, D, sc); break;
      case 3: tile_scores<3>(kr, q0, D, sc); break;
      case 4: tile_scores<4>(kr, q0, D, sc); break;
      default: break;
    }
    float pr[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if (!row_ok[i]) {
        pr[i] = 0.0f;
        continue;
      }
      const bool valid = jkey < kend && jkey <= row_pos[i];
      const float x = valid ? sc[i] * p.scale : -INFINITY;
      const float mnew = fmaxf(m[i], warp_max(x));
      if (mnew == -INFINITY) {
        pr[i] = 0.0f;
        continue;
      }
      const float e = valid ? __expf(x - mnew) : 0.0f;
      const float corr = __expf(m[i] - mnew);  // m = -inf -> 0
      l[i] = l[i] * corr + warp_sum(e);
      m[i] = mnew;
#pragma unroll
      for (int c = 0; c < kMaxCols; ++c) acc[i][c] *= corr;
      pr[i] = e;
    }
    const int jn = static_cast<int>(imin64(kKeys, kend - j0));
    switch (iend) {
      case 1: tile_pv<1, MC>(Vs, Dv, jn, lane, pr, acc); break;
      case 2: tile_pv<2, MC>(Vs, Dv, jn, lane, pr, acc); break;
      case 3: tile_pv<3, MC>(Vs, Dv, jn, lane, pr, acc); break;
      case 4: tile_pv<4, MC>(Vs, Dv, jn, lane, pr, acc); break;
      default: break;
    }
  }
  // write out
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if (!row_ok[i]) continue;
    const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
    if (nsplit == 1) {
      T* o = static_cast<T*>(p.o) + static_cast<int64_t>(row_t[i]) * p.ldo + static_cast<int64_t>(row_h[i]) * Dv;
#pragma unroll
      for (int c = 0; c < kMaxCols; ++c) {
        const int col = lane + 32 * c;
        if (col < Dv) st(o + col, acc[i][c] * inv);
      }
    } else {
      const int64_t idx = (static_cast<int64_t>(row_t[i]) * p.nH + row_h[i]) * nsplit + split;
      float* wo = ws + idx * Dv;
#pragma unroll
      for (int c = 0; c < kMaxCols; ++c) {
        const int col = lane + 32 * c;
        if (col < Dv) wo[col] = acc[i][c] * inv;
      }
      if (lane == 0) ws[p.T * p.nH * nsplit * Dv + idx] = l[i] > 0.0f ? m[i] + logf(l[i]) : -INFINITY;
    }
  }
}

// bf16 prefill on tensor cores (WMMA 16×16×16, fp32 accumulation): block = 64 query rows of one (sequence, head),
// 4 warps × 16 rows; per 64-key tile: S = Q Kᵀ into shared memory, online softmax by the warp (two lanes per row),
// P rounded to bf16, O (fp32, shared memory) rescaled per row then O += P V. D, Dv multiples of 16.
constexpr int kFQ = 64, kFK = 64;
using bf16 = __nv_bfloat16;

__global__ void __launch_bounds__(128) attn_prefill_wmma_kernel(PagedAttention p) {
  namespace wm = nvcuda::wmma;
  extern __shared__ __align__(128) unsigned char fsm[];
  const int D = static_cast<int>(p.D), Dv = static_cast<int>(p.Dv);
  bf16* Qs = reinterpret_cast<bf16*>(fsm);         // [64][D]
  bf16* Ks = Qs + kFQ * D;                          // [64][D]
  bf16* Vs = Ks + kFK * D;                          // [64][Dv]
  float* Ss = reinterpret_cast<float*>(Vs + kFK * Dv);  // [4][16][64]
  bf16* Ps = reinterpret_cast<bf16*>(Ss + 4 * 16 * kFK);  // [4][16][64]
  float* Os = reinterpret_cast<float*>(Ps + 4 * 16 * kFK);  // [64][Dv]
  __shared__ float s_m[kFQ], s_l[kFQ], s_corr[kFQ];
  __shared__ int s_kvslot[kFK];
  int s, tile;
  if (!find_tile(p.cu_seqlens, static_cast<int>(p.S), kFQ, blockIdx.x, &s, &tile)) return;
  const int h = blockIdx.y, kvh = h / static_cast<int>(p.nH / p.nKV);
  const int n_s = p.cu_seqlens[s + 1] - p.cu_seqlens[s], ctx = p.context_lens[s];
  const int pos_base = ctx - n_s, tok0 = tile * kFQ, nq = min(kFQ, n_s - tok0);
  const int64_t row0 = p.cu_seqlens[s] + tok0;
  const int kend = pos_base + tok0 + nq;  // keys 0 .. last position
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const bf16* q = static_cast<const bf16*>(p.q);
  const int qc = D / 8, vc = Dv / 8;
  for (int e = threadIdx.x; e < kFQ * qc; e += blockDim.x) {
    const int r = e / qc, c = (e % qc) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r < nq) v = *reinterpret_cast<const uint4*>(q + (row0 + r) * p.ldq + static_cast<int64_t>(h) * D + c);
    *reinterpret_cast<uint4*>(Qs + r * D + c) = v;
  }
  for (int e = threadIdx.x; e < kFQ * Dv; e += blockDim.x) Os[e] = 0.0f;
  if (threadIdx.x < kFQ) {
    s_m[threadIdx.x] = -INFINITY;
    s_l[threadIdx.x] = 0.0f;
  }
  const bf16* kpool = static_cast<const bf16*>(p.k_pool);
  const bf16* vpool = static_cast<const bf16*>(p.v_pool);
  const int64_t vts = p.v_token_stride ? p.v_token_stride : p.nKV * p.Dv;
  const int32_t* pt = p.page_table + static_cast<int64_t>(s) * p.max_pages;
  float* Sw = Ss + w * 16 * kFK;
  bf16* Pw = Ps + w * 16 * kFK;
  const bool live = w * 16 < nq;
  for (int j0 = 0; j0 < kend; j0 += kFK) {
    __syncthreads();
    if (threadIdx.x < kFK) {
      const int j = j0 + threadIdx.x;
      s_kvslot[threadIdx.x] =
          j < kend ? pt[j / p.page_size] * static_cast<int32_t>(p.page_size) + static_cast<int32_t>(j % p.page_size)
                   : -1;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < kFK * qc; e += blockDim.x) {
      const int j = e / qc, c = (e % qc) * 8;
      const int sl = s_kvslot[j];
      uint4 v = make_uint4(0, 0, 0, 0);
      if (sl >= 0) v = *reinterpret_cast<const uint4*>(kpool + (static_cast<int64_t>(sl) * p.nKV + kvh) * D + c);
      *reinterpret_cast<uint4*>(Ks + j * D + c) = v;
    }
    for (int e = threadIdx.x; e < kFK * vc; e += blockDim.x) {
      const int j = e / vc, c = (e % vc) * 8;
      const int sl = s_kvslot[j];
      uint4 v = make_uint4(0, 0, 0, 0);
      if (sl >= 0) v = *reinterpret_cast<const uint4*>(vpool + static_cast<int64_t>(sl) * vts + static_cast<int64_t>(kvh) * Dv + c);
      *reinterpret_cast<uint4*>(Vs + j * Dv + c) = v;
    }
    __syncthreads();
    if (live) {
      wm::fragment<wm::accumulator, 16, 16, 16, float> sacc[kFK / 16];
#pragma unroll
      for (int nt = 0; nt < kFK / 16; ++nt) wm::fill_fragment(sacc[nt], 0.0f);
      for (int kk = 0; kk < D; kk += 16) {
        wm::fragment<wm::matrix_a, 16, 16, 16, bf16, wm::row_major> a;
        wm::load_matrix_sync(a, Qs + w * 16 * D + kk, D);
#pragma unroll
        for (int nt = 0; nt < kFK / 16; ++nt) {
          wm::fragment<wm::matrix_b, 16, 16, 16, bf16, wm::col_major> b;
          wm::load_matrix_sync(b, Ks + nt * 16 * D + kk, D);
          wm::mma_sync(sacc[nt], a, b, sacc[nt]);
        }
      }
#pragma unroll
      for (int nt = 0; nt < kFK / 16; ++nt) wm::store_matrix_sync(Sw + nt * 16, sacc[nt], kFK, wm::mem_row_major);
      __syncwarp();
      // online softmax: lane -> row rr = lane / 2, columns half*32 .. half*32+31
      const int rr = lane >> 1, half = lane & 1, row = w * 16 + rr;
      const int pos = pos_base + tok0 + row;
      const bool rok = row < nq;
      float mloc = -INFINITY;
      for (int c = 0; c < 32; ++c) {
        const int jj = half * 32 + c, j = j0 + jj;
        if (rok && j < kend && j <= pos) mloc = fmaxf(mloc, Sw[rr * kFK + jj] * p.scale);
      }
      mloc = fmaxf(mloc, __shfl_xor_sync(0xffffffffu, mloc, 1));
      const float m_old = s_m[row];
      const float m_new = fmaxf(m_old, mloc);
      float psum = 0.0f;
      for (int c = 0; c < 32; ++c) {
        const int jj = half * 32 + c, j = j0 + jj;
        float pv = 0.0f;
        if (rok && j < kend && j <= pos && m_new != -INFINITY) pv = __expf(Sw[rr * kFK + jj] * p.scale - m_new);
        const bf16 pb = __float2bfloat16_rn(pv);
        Pw[rr * kFK + jj] = pb;
        psum += __bfloat162float(pb);
      }
      psum += __shfl_xor_sync(0xffffffffu, psum, 1);
      const float corr = m_new == -INFINITY ? 1.0f : __expf(m_old - m_new);
      __syncwarp();
      if (half == 0) {
        s_l[row] = s_l[row] * corr + psum;
        s_m[row] = m_new;
        s_corr[row] = corr;
      }
      __syncwarp();
      float* Ow = Os + w * 16 * Dv;
      for (int e = lane; e < 16 * Dv; e += 32) Ow[e] *= s_corr[w * 16 + e / Dv];
      __syncwarp();
      for (int vt = 0; vt < Dv / 16; ++vt) {
        wm::fragment<wm::accumulator, 16, 16, 16, float> o;
        wm::load_matrix_sync(o, Ow + vt * 16, Dv, wm::mem_row_major);
#pragma unroll
        for (int kk = 0; kk < kFK; kk += 16) {
          wm::fragment<wm::matrix_a, 16, 16, 16, bf16, wm::row_major> a;
          wm::fragment<wm::matrix_b, 16, 16, 16, bf16, wm::row_major> b;
          wm::load_matrix_sync(a, Pw + kk, kFK);
          wm::load_matrix_sync(b, Vs + kk * Dv + vt * 16, Dv);
          wm::mma_sync(o, a, b, o);
        }
        wm::store_matrix_sync(Ow + vt * 16, o, Dv, wm::mem_row_major);
      }
    }
  }
  __syncthreads();
  bf16* o = static_cast<bf16*>(p.o);
  for (int e = threadIdx.x; e < nq * Dv; e += blockDim.x) {
    const int r = e / Dv, c = e % Dv;
    const float l = s_l[r];
    o[(row0 + r) * p.ldo + static_cast<int64_t>(h) * Dv + c] = __float2bfloat16_rn(l > 0.0f ? Os[r * Dv + c] / l : 0.0f);
  }
}

// One block per (token, head): merges the nsplit partial outputs. Splits past the row's keys never ran, so their
// lse is read only for z < the number of splits that cover keys 0..pos (the rest are treated as empty).
template <typename T>
__global__ void attn_combine_kernel(PagedAttention p, int nsplit, int64_t chunk, const float* __restrict__ ws) {
  const int64_t t = blockIdx.x, h = blockIdx.y;
  // find the row's sequence to know its position (binary search over cu_seqlens)
  int lo = 0, hi = static_cast<int>(p.S) - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (p.cu_seqlens[mid] <= t) lo = mid; else hi = mid - 1;
  }
  const int s = lo;
  const int64_t pos = p.context_lens[s] - (p.cu_seqlens[s + 1] - p.cu_seqlens[s]) + (t - p.cu_seqlens[s]);
  // the blocks of a tile cover keys up to the tile's last position; splits z with z*chunk <= pos all ran
  const int nz = static_cast<int>(imin64(nsplit, pos / chunk + 1));
  const int64_t base = (t * p.nH + h) * nsplit;
  const float* lse = ws + p.T * p.nH * nsplit * p.Dv;
  float M = -INFINITY;
  for (int z = 0; z < nz; ++z) M = fmaxf(M, lse[base + z]);
  float den = 0.0f;
  for (int z = 0; z < nz; ++z) den += M == -INFINITY ? 0.0f : __expf(lse[base + z] - M);
  T* o = static_cast<T*>(p.o) + t * p.ldo + h * p.Dv;
  for (int64_t c = threadIdx.x; c < p.Dv; c += blockDim.x) {
    float num = 0.0f;
    for (int z = 0; z < nz; ++z) {
      const float w = M == -INFINITY ? 0.0f : __expf(lse[base + z] - M);
      num += w * ws[(base + z) * p.Dv + c];
    }
    st(o + c, den > 0.0f ? num / den : 0.0f);
  }
}

template <typename T, int MC>
cudaError_t launch_attn(const PagedAttention& p, int64_t nsplit, int64_t chunk, float* ws, cudaStream_t stream) {
  const int gs = static_cast<int>(p.nH / p.nKV);
  const int HG = gs < kRows ? gs : kRows;
  const int TQ = kRows / HG;
  const int hblocks = (gs + HG - 1) / HG;
  const size_t smem = sizeof(float) * (kRows * p.D + kKeys * (p.D + 1) + kKeys * p.Dv);
  // raise the kernel's dynamic shared memory limit once per size (not a stream operation; skipped on later calls,
  // e.g. inside a graph capture)
  static size_t configured = 0;
  cudaError_t e = cudaSuccess;
  if (smem > configured) {
    e = cudaFuncSetAttribute(attn_kernel<T, MC>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    configured = smem;
  }
  const dim3 grid(static_cast<unsigned>((p.T + TQ - 1) / TQ + p.S), static_cast<unsigned>(p.nKV * hblocks),
                  static_cast<unsigned>(nsplit));
  const int V = static_cast<int>(16 / sizeof(T));
  const bool vec = p.D % V == 0 && p.Dv % V == 0 && p.v_token_stride % V == 0 && reinterpret_cast<uintptr_t>(p.k_pool) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(p.v_pool) % 16 == 0;
  attn_kernel<T, MC><<<grid, 128, smem, stream>>>(p, HG, TQ, chunk, ws, vec);
  e = cudaGetLastError();
  if (e != cudaSuccess || nsplit == 1) return e;
  attn_combine_kernel<T><<<dim3(static_cast<unsigned>(p.T), static_cast<unsigned>(p.nH)), 128, 0, stream>>>(
      p, static_cast<int>(nsplit), chunk, ws);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_attn_any(const PagedAttention& p, int64_t nsplit, int64_t chunk, float* ws, cudaStream_t stream) {
  return p.Dv <= 256 ? launch_attn<T, 8>(p, nsplit, chunk, ws, stream) : launch_attn<T, 16>(p, nsplit, chunk, ws, stream);
}

bool shapes_ok(const PagedAttention& p) {
  return p.nKV > 0 && p.nH % p.nKV == 0 && p.D > 0 && p.D <= 576 && p.Dv > 0 && p.Dv <= 512 &&
         p.page_size > 0;
}
}  // namespace

cudaError_t kv_store(DType dt, const void* k, int64_t ldk, const void* v, int64_t ldv, const int32_t* kv_slot,
                     int64_t T, void* k_pool, void* v_pool, int64_t nKV, int64_t D, int64_t Dv,
                     cudaStream_t stream) {
  if (T == 0) return cudaSuccess;
  if (dt == DType::f32)
    kv_store_kernel<float><<<static_cast<unsigned>(T), 128, 0, stream>>>(
        static_cast<const float*>(k), ldk, static_cast<const float*>(v), ldv, kv_slot, static_cast<float*>(k_pool),
        static_cast<float*>(v_pool), nKV, D, Dv);
  else
    kv_store_kernel<__nv_bfloat16><<<static_cast<unsigned>(T), 128, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(k), ldk, static_cast<const __nv_bfloat16*>(v), ldv, kv_slot,
        static_cast<__nv_bfloat16*>(k_pool), static_cast<__nv_bfloat16*>(v_pool), nKV, D, Dv);
  return cudaGetLastError();
}

cudaError_t attention_prefill_wmma(const PagedAttention& p, cudaStream_t stream) {
  const auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  if (!(p.D % 16 == 0 && p.Dv % 16 == 0 && p.D <= 256 && p.Dv <= 256 && p.v_token_stride % 8 == 0 &&
        p.ldq % 8 == 0 && aligned(p.q) && aligned(p.k_pool) && aligned(p.v_pool) && shapes_ok(p)))
    return cudaErrorNotSupported;
  if (p.T == 0 || p.S == 0) return cudaSuccess;
  const size_t smem = 2 * (2 * kFQ * p.D + kFK * p.Dv) + 4 * 16 * kFK * (4 + 2) + 4 * kFQ * p.Dv;
  static size_t configured = 0;
  if (smem > configured) {
    const cudaError_t e = cudaFuncSetAttribute(attn_prefill_wmma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    configured = smem;
  }
  const dim3 grid(static_cast<unsigned>((p.T + kFQ - 1) / kFQ + p.S), static_cast<unsigned>(p.nH));
  attn_prefill_wmma_kernel<<<grid, 128, smem, stream>>>(p);
  return cudaGetLastError();
}

// bf16: the mma.sync flash kernel (attn_prefill_mma.cu) for its head sizes, else the WMMA kernel for D, Dv multiples
// of 16 up to 256, else the generic kernel.
cudaError_t attention_prefill(DType dt, const PagedAttention& p, cudaStream_t stream) {
  if (p.T == 0 || p.S == 0) return cudaSuccess;
  if (!shapes_ok(p)) return cudaErrorInvalidValue;
  const int64_t chunk = int64_t{1} << 40;
  if (dt == DType::bf16) {
    if (attention_prefill_mma_supported(p)) return attention_prefill_mma(p, stream);
    const cudaError_t e = attention_prefill_wmma(p, stream);
    if (e != cudaErrorNotSupported) return e;
  }
  return dt == DType::f32 ? launch_attn_any<float>(p, 1, chunk, nullptr, stream)
                          : launch_attn_any<__nv_bfloat16>(p, 1, chunk, nullptr, stream);
}

int64_t attention_decode_splits(DType dt, const PagedAttention& p, int64_t max_context) {
  return attention_decode_mma_ok(dt, p) ? attention_decode_mma_splits(p, max_context) : 0;
}

size_t attention_decode_workspace_floats(const PagedAttention& p, int64_t max_context, int64_t chunk) {
  const int64_t nsplit = (max_context + chunk - 1) / chunk;
  return static_cast<size_t>(p.T * p.nH * (nsplit < 1 ? 1 : nsplit) * (p.Dv + 1));
}

cudaError_t attention_decode(DType dt, const PagedAttention& p, int64_t max_context, float* workspace,
                             cudaStream_t stream, int64_t chunk) {
  if (p.T == 0 || p.S == 0) return cudaSuccess;
  if (!shapes_ok(p) || chunk <= 0) return cudaErrorInvalidValue;
  int64_t nsplit = (max_context + chunk - 1) / chunk;
  if (nsplit < 1) nsplit = 1;
  // bf16 decode shapes: the tensor-core split-KV kernel (attention_decode_mma.cu), K/V read once per GQA group; it
  // cuts each sequence's own context into the nsplit ranges (any chunk size)
  if (attention_decode_mma_ok(dt, p)) return attention_decode_mma(p, nsplit, workspace, stream);
  if (chunk % kKeys != 0) return cudaErrorInvalidValue;
  // other decode shapes (fp32 caches): the split-KV decode kernel (attention_decode.cu)
  if (attention_decode_split_ok(dt, p)) return attention_decode_split(dt, p, nsplit, chunk, workspace, stream);
  return dt == DType::f32 ? launch_attn_any<float>(p, nsplit, chunk, workspace, stream)
                          : launch_attn_any<__nv_bfloat16>(p, nsplit, chunk, workspace, stream);
}

}  // namespace hylora::cuda
