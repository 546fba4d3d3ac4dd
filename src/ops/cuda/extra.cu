// Small fp32 kernels behind the neutral ops (extra.h). Grid-stride loops over the elements; reductions in fp32 (the
// dense delta in double, as the CPU reference). The expert GEMM and the embedding also read bf16 weights (fp32 math).
#include "ops/cuda/extra.h"

#include <cuda_bf16.h>

#include "ops/cuda/common.cuh"
#include "ops/cuda/rope_warp.cuh"

namespace hylora::cuda::extra {

namespace {
constexpr int kThreads = 256;
int blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  if (b < 1) b = 1;
  return static_cast<int>(b > 65535 ? 65535 : b);
}
__device__ inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ inline float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

__global__ void pointwise_k(int kind, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t cols) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows * cols; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    float& v = y[r * ldy + c];
    switch (kind) {
      case 0: v += x[r * ldx + c]; break;
      case 1: v = sigm(v); break;
      case 2: v *= sigm(x[r * ldx + c]); break;
      case 3: { const float m = v > 0.0f ? v : 0.0f; v = m * m; } break;
      default: v = x[r * ldx + c]; break;
    }
  }
}
__global__ void add_row_scaled_k(const float* x, int64_t ldx, const float* s, float* y, int64_t ldy, int64_t rows,
                                 int64_t cols) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows * cols; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    y[r * ldy + c] += s[r] * x[r * ldx + c];
  }
}
__global__ void add_bias_k(const float* b, float* y, int64_t ldy, int64_t rows, int64_t cols) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows * cols; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    y[r * ldy + c] += b[c];
  }
}
__global__ void silu_mul_k(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t I) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows * I; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / I, c = i % I;
    const float g = x[r * ldx + c];
    y[r * ldy + c] = g / (1.0f + expf(-g)) * x[r * ldx + I + c];
  }
}
__global__ void split_k(const float* x, int64_t ldx, float* a, int64_t lda, float* b, int64_t ldb, int64_t rows,
                        int64_t heads, int64_t D) {
  const int64_t W = heads * D;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows * W; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / W, c = i % W, h = c / D, d = c % D;
    a[r * lda + c] = x[r * ldx + h * 2 * D + d];
    b[r * ldb + c] = x[r * ldx + h * 2 * D + D + d];
  }
}
__global__ void gather_k(const float* x, int64_t ldx, const int32_t* idx, int64_t div, float* y, int64_t ldy, int64_t R,
                         int64_t cols) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < R * cols; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    y[r * ldy + c] = x[(int64_t)(idx[r] / div) * ldx + c];
  }
}
__global__ void gdn_gates_k(const float* b, int64_t ldb, const float* a, int64_t lda, const float* negA,
                            const float* dt_bias, float* g, int64_t ldg, float* beta, int64_t ldbeta, int64_t T,
                            int64_t Hv) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < T * Hv; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t t = i / Hv, j = i % Hv;
    beta[t * ldbeta + j] = sigm(b[t * ldb + j]);
    g[t * ldg + j] = negA[j] * softplus(a[t * lda + j] + dt_bias[j]);
  }
}
// RoPE: one warp per (row, head), lane l owns pairs i ≡ l (mod 32) (≤ 8 for rot ≤ 512). The old kernel ran one thread
// per (row, head) over all rot/2 pairs with a 512-float local array and serial double sin/cos: at decode (16 heads ×
// batch) that is a few hundred threads doing ~64 serial double sincos each (20-45 µs). Now every pair has its own
// lane (T·heads·32 threads), the sincos calls run in parallel, and nothing spills. All pairs are read into registers
// before a __syncwarp and then written, because the interleaved layout writes halves (i, i + rot/2) that other
// lanes' pairs (2i, 2i+1) read. Angles stay float(pos)·inv_freq with a double sincos, as the CPU op.
__global__ void __launch_bounds__(256) rope_k(float* x, int64_t ldx, int64_t T, int64_t heads, int64_t D,
                                              const int32_t* __restrict__ pos, const float* __restrict__ inv_freq,
                                              int rot, int64_t offset, float scaling, bool interleaved) {
  const int64_t nw = T * heads, wstride = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t wid = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; wid < nw; wid += wstride) {
    const int64_t t = wid / heads, h = wid % heads;
    detail::rope_head_warp(x + t * ldx + h * D + offset, static_cast<float>(pos[t]), inv_freq, rot, scaling,
                           interleaved);
    __syncwarp();  // the next head's reads come after this one's writes
  }
}
__global__ void matmul_nn_k(const float* x, int64_t ldx, const float* W, int64_t ldw, float* y, int64_t ldy, int64_t M,
                            int64_t N, int64_t K, bool acc) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < M * N; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t m = i / N, n = i % N;
    float s = 0.0f;
    for (int64_t kk = 0; kk < K; ++kk) s += x[m * ldx + kk] * W[kk * ldw + n];
    y[m * ldy + n] = acc ? y[m * ldy + n] + s : s;
  }
}
// One warp per output element: lanes split K.
template <typename TW>
__global__ void expert_gemm_k(const float* xs, int64_t ldx, const TW* W, const int32_t* off, int64_t E, float* ys,
                              int64_t ldy, int64_t P, int64_t N, int64_t K) {
  const int64_t warps = (int64_t)gridDim.x * blockDim.x / 32;
  const int lane = threadIdx.x % 32;
  for (int64_t i = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32; i < P * N; i += warps) {
    const int64_t p = i / N, n = i % N;
    int64_t e = 0;
    while (e + 1 < E && off[e + 1] <= p) ++e;
    const TW* w = W + (e * N + n) * K;
    const float* xr = xs + p * ldx;
    float s = 0.0f;
    for (int64_t kk = lane; kk < K; kk += 32) s += xr[kk] * detail::ld(w + kk);
    for (int o = 16; o > 0; o /= 2) s += __shfl_down_sync(0xffffffffu, s, o);
    if (lane == 0) ys[p * ldy + n] = s;
  }
}
__global__ void moe_combine_k(const float* ys, int64_t ldy, const int32_t* pos, const float* w, int64_t T, int64_t k,
                              int64_t H, float* out, int64_t ldo) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < T * H; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t t = i / H, c = i % H;
    float acc = 0.0f;
    // ascending sorted-row order, like the CPU reference
    int32_t last = -1;
    for (int64_t jj = 0; jj < k; ++jj) {
      int64_t best = -1;
      for (int64_t j = 0; j < k; ++j) {
        const int32_t p = pos[t * k + j];
        if (p > last && (best < 0 || p < pos[t * k + best])) best = j;
      }
      last = pos[t * k + best];
      acc += w[t * k + best] * ys[(int64_t)last * ldy + c];
    }
    out[t * ldo + c] = acc;
  }
}
__global__ void invert_k(const int32_t* pair, int64_t P, int32_t* pos) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < P; i += (int64_t)gridDim.x * blockDim.x)
    pos[pair[i]] = static_cast<int32_t>(i);
}
__global__ void paged_store_k(const float* x, int64_t ldx, const int32_t* slots, int64_t T, int64_t W, float* cache) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < T * W; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t t = i / W, c = i % W;
    if (slots[t] >= 0) cache[(int64_t)slots[t] * W + c] = x[t * ldx + c];
  }
}
// Block per (t, h); shared: qlat [Ckv], olat [Ckv], scores [max_ctx].
__global__ void mla_k(const float* q, int64_t ldq, const float* cache, const int32_t* cu, const int32_t* ctx_lens,
                      const int32_t* pt, int64_t S, int64_t max_pages, int64_t page_size, const float* const* kvb,
                      const int32_t* kvb_of_row, int64_t nH, int64_t Dn, int64_t Dr, int64_t Dv, int64_t Ckv,
                      float scale, float* o, int64_t ldo) {
  extern __shared__ float sh[];
  const int64_t t = blockIdx.x / nH, h = blockIdx.x % nH;
  float* qlat = sh;
  float* olat = sh + Ckv;
  float* sc = sh + 2 * Ckv;
  __shared__ float red[2];
  int64_t s = 0;
  while (s + 1 < S + 1 && cu[s + 1] <= t) ++s;
  const int64_t n_new = cu[s + 1] - cu[s], past = ctx_lens[s] - n_new, len = past + (t - cu[s]) + 1;
  const int64_t Dqk = Dn + Dr, width = Ckv + Dr;
  const float* W = kvb[kvb_of_row[t]];
  const float* Wk = W + h * (Dn + Dv) * Ckv;
  const float* Wv = Wk + Dn * Ckv;
  const float* qn = q + t * ldq + h * Dqk;
  const float* qr = qn + Dn;
  for (int64_t i = threadIdx.x; i < Ckv; i += blockDim.x) {
    float a = 0.0f;
    for (int64_t d = 0; d < Dn; ++d) a += qn[d] * Wk[d * Ckv + i];
    qlat[i] = a;
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
    const int32_t page = pt[s * max_pages + j / page_size];
    const float* e = cache + ((int64_t)page * page_size + j % page_size) * width;
    float a = 0.0f;
    for (int64_t i = 0; i < Ckv; ++i) a += qlat[i] * e[i];
    for (int64_t d = 0; d < Dr; ++d) a += qr[d] * e[Ckv + d];
    sc[j] = a * scale;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < len; ++j) mx = fmaxf(mx, sc[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < len; ++j) {
      sc[j] = expf(sc[j] - mx);
      sum += sc[j];
    }
    red[0] = static_cast<float>(1.0 / sum);
  }
  __syncthreads();
  const float inv = red[0];
  for (int64_t i = threadIdx.x; i < Ckv; i += blockDim.x) {
    float a = 0.0f;
    for (int64_t j = 0; j < len; ++j) {
      const int32_t page = pt[s * max_pages + j / page_size];
      a += sc[j] * inv * cache[((int64_t)page * page_size + j % page_size) * width + i];
    }
    olat[i] = a;
  }
  __syncthreads();
  for (int64_t d = threadIdx.x; d < Dv; d += blockDim.x) {
    float a = 0.0f;
    for (int64_t i = 0; i < Ckv; ++i) a += Wv[d * Ckv + i] * olat[i];
    o[t * ldo + h * Dv + d] = a;
  }
}
__global__ void dense_delta_k(const float* x, int64_t ldx, const int32_t* perm, const int32_t* indptr, int64_t g,
                              int64_t R, const float* delta, int64_t n, int64_t in, float* y, int64_t ldy, int64_t off) {
  const int64_t b = indptr[g], m = indptr[g + 1] - b;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < R * n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / n, c = i % n;
    if (r >= m) continue;
    const int64_t row = perm[b + r];
    double a = 0.0;
    for (int64_t j = 0; j < in; ++j) a += (double)x[row * ldx + j] * delta[c * in + j];
    y[row * ldy + off + c] += static_cast<float>(a);
  }
}
__global__ void emb_delta_k(const int32_t* ids, const int32_t* perm, const int32_t* indptr, int64_t g, int64_t R,
                            const float* delta, int64_t H, float* y, int64_t ldy) {
  const int64_t b = indptr[g], m = indptr[g + 1] - b;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < R * H; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / H, c = i % H;
    if (r >= m) continue;
    const int64_t row = perm[b + r];
    y[row * ldy + c] += delta[(int64_t)ids[row] * H + c];
  }
}
__global__ void seg_index_k(const int32_t* perm, const int32_t* indptr, int64_t G, int32_t* out) {
  for (int64_t g = blockIdx.x; g < G; g += gridDim.x)
    for (int64_t i = indptr[g] + threadIdx.x; i < indptr[g + 1]; i += blockDim.x) out[perm[i]] = (int32_t)(g + 1);
}
template <typename TW>
__global__ void embedding_k(const TW* table, int64_t H, const int32_t* ids, int64_t n, float* y, int64_t ldy) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n * H; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / H, c = i % H;
    y[r * ldy + c] = detail::ld(table + (int64_t)ids[r] * H + c);
  }
}
__global__ void to_bf16_k(const float* x, int64_t ldx, __nv_bfloat16* y, int64_t ldy, int64_t rows, int64_t cols) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows * cols; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    y[r * ldy + c] = __float2bfloat16_rn(x[r * ldx + c]);
  }
}
}  // namespace

cudaError_t pointwise(Pointwise kind, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t cols,
                      cudaStream_t st) {
  pointwise_k<<<blocks_for(rows * cols), kThreads, 0, st>>>(static_cast<int>(kind), x, ldx, y, ldy, rows, cols);
  return cudaGetLastError();
}
cudaError_t add_row_scaled(const float* x, int64_t ldx, const float* s, float* y, int64_t ldy, int64_t rows,
                           int64_t cols, cudaStream_t st) {
  add_row_scaled_k<<<blocks_for(rows * cols), kThreads, 0, st>>>(x, ldx, s, y, ldy, rows, cols);
  return cudaGetLastError();
}
cudaError_t add_bias(const float* b, float* y, int64_t ldy, int64_t rows, int64_t cols, cudaStream_t st) {
  add_bias_k<<<blocks_for(rows * cols), kThreads, 0, st>>>(b, y, ldy, rows, cols);
  return cudaGetLastError();
}
cudaError_t silu_mul_halves(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t I,
                            cudaStream_t st) {
  silu_mul_k<<<blocks_for(rows * I), kThreads, 0, st>>>(x, ldx, y, ldy, rows, I);
  return cudaGetLastError();
}
cudaError_t split_head_halves(const float* x, int64_t ldx, float* a, int64_t lda, float* b, int64_t ldb, int64_t rows,
                              int64_t heads, int64_t D, cudaStream_t st) {
  split_k<<<blocks_for(rows * heads * D), kThreads, 0, st>>>(x, ldx, a, lda, b, ldb, rows, heads, D);
  return cudaGetLastError();
}
cudaError_t gather_rows(const float* x, int64_t ldx, const int32_t* idx, int64_t div, float* y, int64_t ldy, int64_t R,
                        int64_t cols, cudaStream_t st) {
  if (R == 0) return cudaSuccess;
  gather_k<<<blocks_for(R * cols), kThreads, 0, st>>>(x, ldx, idx, div, y, ldy, R, cols);
  return cudaGetLastError();
}
cudaError_t gdn_gates(const float* b, int64_t ldb, const float* a, int64_t lda, const float* negA,
                      const float* dt_bias, float* g, int64_t ldg, float* beta, int64_t ldbeta, int64_t T, int64_t Hv,
                      cudaStream_t st) {
  gdn_gates_k<<<blocks_for(T * Hv), kThreads, 0, st>>>(b, ldb, a, lda, negA, dt_bias, g, ldg, beta, ldbeta, T, Hv);
  return cudaGetLastError();
}
cudaError_t rope(float* x, int64_t ldx, int64_t T, int64_t heads, int64_t D, const int32_t* pos, const float* inv_freq,
                 int64_t rot, int64_t offset, float scaling, bool interleaved, cudaStream_t st) {
  if (rot > 512) return cudaErrorInvalidValue;
  if (T == 0 || heads == 0 || rot == 0) return cudaSuccess;
  // one warp per (row, head): 8 warps per 256-thread block (blocks_for caps the grid; the kernel strides past it)
  rope_k<<<blocks_for(T * heads * 32), kThreads, 0, st>>>(x, ldx, T, heads, D, pos, inv_freq, static_cast<int>(rot),
                                                          offset, scaling, interleaved);
  return cudaGetLastError();
}
cudaError_t matmul_nn(const float* x, int64_t ldx, const float* W, int64_t ldw, float* y, int64_t ldy, int64_t M,
                      int64_t N, int64_t K, bool accumulate, cudaStream_t st) {
  matmul_nn_k<<<blocks_for(M * N), kThreads, 0, st>>>(x, ldx, W, ldw, y, ldy, M, N, K, accumulate);
  return cudaGetLastError();
}
cudaError_t expert_gemm(const float* xs, int64_t ldx, DType w_dtype, const void* W, const int32_t* offsets, int64_t E,
                        float* ys, int64_t ldy, int64_t P, int64_t N, int64_t K, cudaStream_t st) {
  if (P == 0) return cudaSuccess;
  if (w_dtype == DType::f32)
    expert_gemm_k<<<blocks_for(P * N * 32), kThreads, 0, st>>>(xs, ldx, static_cast<const float*>(W), offsets, E, ys,
                                                               ldy, P, N, K);
  else
    expert_gemm_k<<<blocks_for(P * N * 32), kThreads, 0, st>>>(xs, ldx, static_cast<const __nv_bfloat16*>(W),
                                                               offsets, E, ys, ldy, P, N, K);
  return cudaGetLastError();
}
cudaError_t moe_combine(const float* ys, int64_t ldy, const int32_t* pair, const float* w, int64_t T, int64_t k,
                        int64_t H, float* out, int64_t ldo, cudaStream_t st) {
  int32_t* pos = nullptr;
  cudaError_t e = cudaMallocAsync(&pos, sizeof(int32_t) * T * k, st);
  if (e != cudaSuccess) return e;
  invert_k<<<blocks_for(T * k), kThreads, 0, st>>>(pair, T * k, pos);
  moe_combine_k<<<blocks_for(T * H), kThreads, 0, st>>>(ys, ldy, pos, w, T, k, H, out, ldo);
  e = cudaGetLastError();
  cudaFreeAsync(pos, st);
  return e;
}
cudaError_t paged_store(const float* x, int64_t ldx, const int32_t* kv_slots, int64_t T, int64_t W, float* cache,
                        cudaStream_t st) {
  paged_store_k<<<blocks_for(T * W), kThreads, 0, st>>>(x, ldx, kv_slots, T, W, cache);
  return cudaGetLastError();
}
cudaError_t mla_attention(const float* q, int64_t ldq, const float* cache, const int32_t* cu_seqlens,
                          const int32_t* context_lens, const int32_t* page_table, int64_t S, int64_t T,
                          int64_t max_pages, int64_t page_size, const float* const* kvb, const int32_t* kvb_of_row,
                          int64_t nH, int64_t Dn, int64_t Dr, int64_t Dv, int64_t Ckv, int64_t max_ctx, float scale,
                          float* o, int64_t ldo, cudaStream_t st) {
  const size_t shmem = sizeof(float) * (2 * Ckv + max_ctx);
  if (shmem > 48 * 1024) {
    cudaError_t e = cudaFuncSetAttribute(mla_k, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shmem));
    if (e != cudaSuccess) return e;
  }
  mla_k<<<static_cast<unsigned>(T * nH), 128, shmem, st>>>(q, ldq, cache, cu_seqlens, context_lens, page_table, S,
                                                           max_pages, page_size, kvb, kvb_of_row, nH, Dn, Dr, Dv, Ckv,
                                                           scale, o, ldo);
  return cudaGetLastError();
}
cudaError_t segment_dense_delta(const float* x, int64_t ldx, const int32_t* perm, const int32_t* indptr, int64_t g,
                                int64_t R, const float* delta, int64_t n, int64_t in, float* y, int64_t ldy,
                                int64_t off, cudaStream_t st) {
  if (R == 0) return cudaSuccess;
  dense_delta_k<<<blocks_for(R * n), kThreads, 0, st>>>(x, ldx, perm, indptr, g, R, delta, n, in, y, ldy, off);
  return cudaGetLastError();
}
cudaError_t segment_embedding_delta(const int32_t* ids, const int32_t* perm, const int32_t* indptr, int64_t g,
                                    int64_t R, const float* delta, int64_t H, float* y, int64_t ldy, cudaStream_t st) {
  if (R == 0) return cudaSuccess;
  emb_delta_k<<<blocks_for(R * H), kThreads, 0, st>>>(ids, perm, indptr, g, R, delta, H, y, ldy);
  return cudaGetLastError();
}
cudaError_t segment_index(const int32_t* perm, const int32_t* indptr, int64_t G, int64_t R, int32_t* out, int64_t N,
                          cudaStream_t st) {
  (void)R;
  cudaError_t e = cudaMemsetAsync(out, 0, sizeof(int32_t) * N, st);
  if (e != cudaSuccess || G == 0) return e;
  seg_index_k<<<static_cast<unsigned>(G), kThreads, 0, st>>>(perm, indptr, G, out);
  return cudaGetLastError();
}
cudaError_t embedding(DType table_dtype, const void* table, int64_t H, const int32_t* ids, int64_t n, float* y,
                      int64_t ldy, cudaStream_t st) {
  if (table_dtype == DType::f32)
    embedding_k<<<blocks_for(n * H), kThreads, 0, st>>>(static_cast<const float*>(table), H, ids, n, y, ldy);
  else
    embedding_k<<<blocks_for(n * H), kThreads, 0, st>>>(static_cast<const __nv_bfloat16*>(table), H, ids, n, y, ldy);
  return cudaGetLastError();
}
cudaError_t to_bf16(const float* x, int64_t ldx, void* y, int64_t ldy, int64_t rows, int64_t cols, cudaStream_t st) {
  if (rows * cols == 0) return cudaSuccess;
  to_bf16_k<<<blocks_for(rows * cols), kThreads, 0, st>>>(x, ldx, static_cast<__nv_bfloat16*>(y), ldy, rows, cols);
  return cudaGetLastError();
}

}  // namespace hylora::cuda::extra
