// MoE expert path (math in moe.h).
// permute: CUB's stable radix sort of (expert id, entry) pairs, then offsets by binary search of each expert in the
//   sorted ids and the inverse permutation by a scatter.
// grouped GEMM: one block per (64-row tile of one expert's sorted rows, 64 output columns); tiles are mapped from the
//   device-side offsets (grid from the host-known bound n/64 + E, graph-safe); 16-deep K slices of the gathered
//   input rows and of the expert's weight rows in shared memory, 4×4 fp32 accumulators per thread (fp32, and bf16
//   with unaligned shapes); bf16 otherwise runs the same tiling on tensor cores (grouped_gemm_wmma_kernel).
#include <mma.h>

#include <cub/device/device_radix_sort.cuh>

#include "ops/cuda/common.cuh"
#include "ops/cuda/moe.h"

namespace hylora::cuda {
using namespace detail;

namespace {
constexpr int kBM = 64, kBN = 64, kBK = 16;

__global__ void iota_kernel(int32_t* v, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) v[i] = static_cast<int32_t>(i);
}

__global__ void offsets_kernel(const int32_t* __restrict__ keys, int64_t n, int64_t E, int32_t* offsets) {
  const int64_t x = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (x > E) return;
  int64_t lo = 0, hi = n;  // first index with keys[i] >= x
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (keys[mid] < x) lo = mid + 1; else hi = mid;
  }
  offsets[x] = static_cast<int32_t>(lo);
}

__global__ void inverse_kernel(const int32_t* __restrict__ sorted, int64_t n, int32_t* pos) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) pos[sorted[i]] = static_cast<int32_t>(i);
}

__global__ void lora_keys_kernel(const int32_t* __restrict__ ids, const int32_t* __restrict__ sorted, int64_t n, int k,
                                 const int32_t* __restrict__ token_slot, int slots, int E, int32_t* keys,
                                 int32_t* vals) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int32_t e = sorted[i];
  const int32_t sl = token_slot[e / k];
  keys[i] = sl < 0 ? E * slots : ids[e] * slots + sl;
  vals[i] = static_cast<int32_t>(i);
}

__global__ void lora_perm_kernel(const int32_t* __restrict__ sorted, const int32_t* __restrict__ rows, int64_t n, int k,
                                 int32_t* perm_x, int32_t* perm_y) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  perm_y[i] = rows[i];
  perm_x[i] = sorted[rows[i]] / k;
}

__global__ void iota_g_kernel(int32_t* v, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) v[i] = static_cast<int32_t>(i);
}

// The tile of a grouped-GEMM block (both kernels below): expert ex, sorted rows [r0, r0 + nrows) (nrows ≤ kBM),
// output columns from n0; arow[i] = the row of x that sorted row r0 + i reads (−1 past nrows). False (block-uniform):
// a spare tile or columns past N, nothing to do. Ends with a barrier (arow visible to the block).
__device__ __forceinline__ bool grouped_tile(const int32_t* __restrict__ sorted, int gather_k,
                                             const int32_t* __restrict__ offsets, int E, int64_t N, int64_t* arow,
                                             int& ex, int& r0, int& nrows, int64_t& n0) {
  int tile;
  if (!find_tile(offsets, E, kBM, blockIdx.x, &ex, &tile)) return false;
  n0 = static_cast<int64_t>(blockIdx.y) * kBN;
  if (n0 >= N) return false;
  r0 = offsets[ex] + tile * kBM;
  nrows = min(kBM, offsets[ex + 1] - r0);
  if (threadIdx.x < kBM) {
    const int i = r0 + threadIdx.x;
    arow[threadIdx.x] = threadIdx.x < nrows ? (gather_k > 0 ? sorted[i] / gather_k : i) : -1;
  }
  __syncthreads();
  return true;
}

template <typename T>
__global__ void __launch_bounds__(256) grouped_gemm_kernel(const T* __restrict__ x, int64_t ldx,
                                                           const int32_t* __restrict__ sorted, int gather_k,
                                                           const int32_t* __restrict__ offsets, int E,
                                                           const T* __restrict__ W, T* __restrict__ y, int64_t ldy,
                                                           int64_t N, int64_t K) {
  __shared__ float As[kBK][kBM + 4];
  __shared__ float Bs[kBK][kBN + 4];
  __shared__ int64_t arow[kBM];
  int ex, r0, nrows;
  int64_t n0;
  if (!grouped_tile(sorted, gather_k, offsets, E, N, arow, ex, r0, nrows, n0)) return;
  const T* We = W + static_cast<int64_t>(ex) * N * K;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += kBK) {
    for (int e = threadIdx.x; e < kBM * kBK; e += 256) {
      const int r = e / kBK, c = e % kBK;
      As[c][r] = (arow[r] >= 0 && k0 + c < K) ? ld(x + arow[r] * ldx + k0 + c) : 0.0f;
      Bs[c][r] = (n0 + r < N && k0 + c < K) ? ld(We + (n0 + r) * K + k0 + c) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        a[i] = As[kk][ty + 16 * i];
        b[i] = Bs[kk][tx + 16 * i];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = ty + 16 * i;
    if (r >= nrows) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t c = n0 + tx + 16 * j;
      if (c < N) st(y + static_cast<int64_t>(r0 + r) * ldy + c, acc[i][j]);
    }
  }
}

// bf16 grouped GEMM on tensor cores (WMMA 16×16×16, fp32 accumulation): same tiling of the sorted rows as the SIMT
// kernel (64 rows × 64 columns per block), 4 warps of 32×32, K slices of 32 staged with 16-byte loads.
// Needs K % 8 == 0, ldx % 8 == 0 and 16-byte aligned x and W.
constexpr int kWK = 32, kWP = kWK + 8;  // K slice, padded smem row (bf16 elements)

__global__ void __launch_bounds__(128) grouped_gemm_wmma_kernel(const __nv_bfloat16* __restrict__ x, int64_t ldx,
                                                                const int32_t* __restrict__ sorted, int gather_k,
                                                                const int32_t* __restrict__ offsets, int E,
                                                                const __nv_bfloat16* __restrict__ W,
                                                                __nv_bfloat16* __restrict__ y, int64_t ldy, int64_t N,
                                                                int64_t K) {
  namespace wm = nvcuda::wmma;
  __shared__ __align__(128) __nv_bfloat16 As[kBM][kWP];
  __shared__ __align__(128) __nv_bfloat16 Bs[kBN][kWP];
  __shared__ __align__(128) float Cs[kBM][kBN + 4];
  __shared__ int64_t arow[kBM];
  int ex, r0, nrows;
  int64_t n0;
  if (!grouped_tile(sorted, gather_k, offsets, E, N, arow, ex, r0, nrows, n0)) return;
  const __nv_bfloat16* We = W + static_cast<int64_t>(ex) * N * K;
  const int w = threadIdx.x >> 5, wr = (w >> 1) * 32, wc = (w & 1) * 32;
  wm::fragment<wm::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wm::fill_fragment(acc[i][j], 0.0f);
  for (int64_t k0 = 0; k0 < K; k0 += kWK) {
    // 64 rows × 32 k of A and of W: 256 16-byte chunks each, 2 per thread
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int e = threadIdx.x + 128 * u, r = e / 4, c = (e % 4) * 8;
      uint4 va = make_uint4(0, 0, 0, 0), vb = make_uint4(0, 0, 0, 0);
      if (arow[r] >= 0 && k0 + c < K) va = *reinterpret_cast<const uint4*>(x + arow[r] * ldx + k0 + c);
      if (n0 + r < N && k0 + c < K) vb = *reinterpret_cast<const uint4*>(We + (n0 + r) * K + k0 + c);
      *reinterpret_cast<uint4*>(&As[r][c]) = va;
      *reinterpret_cast<uint4*>(&Bs[r][c]) = vb;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kWK; kk += 16) {
      wm::fragment<wm::matrix_a, 16, 16, 16, __nv_bfloat16, wm::row_major> a[2];
      wm::fragment<wm::matrix_b, 16, 16, 16, __nv_bfloat16, wm::col_major> b[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) wm::load_matrix_sync(a[i], &As[wr + 16 * i][kk], kWP);
#pragma unroll
      for (int j = 0; j < 2; ++j) wm::load_matrix_sync(b[j], &Bs[wc + 16 * j][kk], kWP);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wm::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wm::store_matrix_sync(&Cs[wr + 16 * i][wc + 16 * j], acc[i][j], kBN + 4, wm::mem_row_major);
  __syncthreads();
  for (int e = threadIdx.x; e < kBM * kBN; e += 128) {
    const int r = e / kBN, c = e % kBN;
    if (r < nrows && n0 + c < N) y[static_cast<int64_t>(r0 + r) * ldy + n0 + c] = __float2bfloat16_rn(Cs[r][c]);
  }
}

template <typename T>
__global__ void activation_kernel(const T* __restrict__ h, int64_t ldh, T* __restrict__ a, int64_t lda, int64_t I,
                                  bool gated) {
  const int64_t r = blockIdx.x;
  for (int64_t c = threadIdx.x; c < I; c += blockDim.x) {
    float v;
    if (gated) {
      v = silu_exact(ld(h + r * ldh + c)) * ld(h + r * ldh + I + c);
    } else {
      const float z = fmaxf(ld(h + r * ldh + c), 0.0f);
      v = z * z;
    }
    st(a + r * lda + c, v);
  }
}

template <typename T>
__global__ void combine_kernel(const T* __restrict__ y, int64_t ldy, const int32_t* __restrict__ pos,
                               const float* __restrict__ w, int k, int64_t H, T* out, int64_t ldo, bool accumulate) {
  const int64_t t = blockIdx.x;
  for (int64_t c = threadIdx.x; c < H; c += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < k; ++j) acc += w[t * k + j] * ld(y + static_cast<int64_t>(pos[t * k + j]) * ldy + c);
    T* o = out + t * ldo + c;
    st(o, accumulate ? ld(o) + acc : acc);
  }
}
}  // namespace

size_t moe_permute_workspace_bytes(int64_t n, int64_t E) {
  size_t temp = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, temp, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                  static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                  static_cast<int>(n), 0, 32);
  (void)E;
  return temp + 2 * sizeof(int32_t) * static_cast<size_t>(n) + 256;
}

cudaError_t moe_permute(const int32_t* ids, int64_t n, int64_t E, int32_t* sorted, int32_t* pos, int32_t* offsets,
                        void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (n == 0) return cudaMemsetAsync(offsets, 0, sizeof(int32_t) * (E + 1), stream);
  int end_bit = 1;
  while ((int64_t{1} << end_bit) <= E) ++end_bit;
  char* ws = static_cast<char*>(workspace);
  int32_t* keys_out = reinterpret_cast<int32_t*>(ws);
  int32_t* vals_in = keys_out + n;
  char* temp = reinterpret_cast<char*>(vals_in + n);
  temp += (256 - reinterpret_cast<uintptr_t>(temp) % 256) % 256;
  const size_t used = static_cast<size_t>(temp - ws);
  if (used > workspace_bytes) return cudaErrorInvalidValue;
  size_t temp_bytes = workspace_bytes - used;
  const unsigned blocks = static_cast<unsigned>((n + 255) / 256);
  iota_kernel<<<blocks, 256, 0, stream>>>(vals_in, n);
  cudaError_t e = cub::DeviceRadixSort::SortPairs(temp, temp_bytes, ids, keys_out, vals_in, sorted,
                                                  static_cast<int>(n), 0, end_bit, stream);
  if (e != cudaSuccess) return e;
  offsets_kernel<<<static_cast<unsigned>((E + 1 + 255) / 256), 256, 0, stream>>>(keys_out, n, E, offsets);
  inverse_kernel<<<blocks, 256, 0, stream>>>(sorted, n, pos);
  return cudaGetLastError();
}

cudaError_t moe_grouped_gemm(DType dt, const void* x, int64_t ldx, const int32_t* sorted, int64_t gather_k,
                             const int32_t* offsets, int64_t E, const void* W, void* y, int64_t ldy, int64_t n,
                             int64_t N, int64_t K, cudaStream_t stream) {
  if (n == 0 || N == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>((n + kBM - 1) / kBM + E), static_cast<unsigned>((N + kBN - 1) / kBN));
  const int gk = static_cast<int>(gather_k), Ei = static_cast<int>(E);
  if (dt == DType::f32)
    grouped_gemm_kernel<float><<<grid, 256, 0, stream>>>(static_cast<const float*>(x), ldx, sorted, gk, offsets, Ei,
                                                         static_cast<const float*>(W), static_cast<float*>(y), ldy, N,
                                                         K);
  else if (K % 8 == 0 && ldx % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
           reinterpret_cast<uintptr_t>(W) % 16 == 0)
    grouped_gemm_wmma_kernel<<<grid, 128, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), ldx, sorted, gk, offsets,
                                                       Ei, static_cast<const __nv_bfloat16*>(W),
                                                       static_cast<__nv_bfloat16*>(y), ldy, N, K);
  else
    grouped_gemm_kernel<__nv_bfloat16><<<grid, 256, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(x), ldx, sorted, gk, offsets, Ei, static_cast<const __nv_bfloat16*>(W),
        static_cast<__nv_bfloat16*>(y), ldy, N, K);
  return cudaGetLastError();
}

cudaError_t moe_activation(DType dt, const void* h, int64_t ldh, void* a, int64_t lda, int64_t n, int64_t I,
                           bool gated_silu, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (dt == DType::f32)
    activation_kernel<float><<<static_cast<unsigned>(n), 256, 0, stream>>>(
        static_cast<const float*>(h), ldh, static_cast<float*>(a), lda, I, gated_silu);
  else
    activation_kernel<__nv_bfloat16><<<static_cast<unsigned>(n), 256, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(h), ldh, static_cast<__nv_bfloat16*>(a), lda, I, gated_silu);
  return cudaGetLastError();
}

cudaError_t moe_combine(DType dt, const void* y, int64_t ldy, const int32_t* pos, const float* weights, int64_t T,
                        int64_t k, int64_t H, void* out, int64_t ldo, bool accumulate, cudaStream_t stream) {
  if (T == 0) return cudaSuccess;
  if (dt == DType::f32)
    combine_kernel<float><<<static_cast<unsigned>(T), 256, 0, stream>>>(
        static_cast<const float*>(y), ldy, pos, weights, static_cast<int>(k), H, static_cast<float*>(out), ldo,
        accumulate);
  else
    combine_kernel<__nv_bfloat16><<<static_cast<unsigned>(T), 256, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(y), ldy, pos, weights, static_cast<int>(k), H,
        static_cast<__nv_bfloat16*>(out), ldo, accumulate);
  return cudaGetLastError();
}

size_t moe_lora_segments_workspace_bytes(int64_t n) {
  size_t temp = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, temp, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                  static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                  static_cast<int>(n), 0, 32);
  return temp + 4 * sizeof(int32_t) * static_cast<size_t>(n) + 256;
}

cudaError_t moe_lora_segments(const int32_t* ids, const int32_t* sorted, int64_t n, int64_t k,
                              const int32_t* token_slot, int64_t E, int64_t slots, int32_t* perm_x, int32_t* perm_y,
                              int32_t* seg_indptr, int32_t* seg_slot, void* workspace, size_t workspace_bytes,
                              cudaStream_t stream) {
  const int64_t G = E * slots;
  const unsigned gb = static_cast<unsigned>((G + 255) / 256);
  iota_g_kernel<<<gb, 256, 0, stream>>>(seg_slot, G);
  if (n == 0) return cudaMemsetAsync(seg_indptr, 0, sizeof(int32_t) * (G + 1), stream);
  int end_bit = 1;
  while ((int64_t{1} << end_bit) <= G) ++end_bit;
  char* ws = static_cast<char*>(workspace);
  int32_t* keys = reinterpret_cast<int32_t*>(ws);
  int32_t* vals = keys + n;
  int32_t* keys_out = vals + n;
  int32_t* rows = keys_out + n;
  char* temp = reinterpret_cast<char*>(rows + n);
  temp += (256 - reinterpret_cast<uintptr_t>(temp) % 256) % 256;
  const size_t used = static_cast<size_t>(temp - ws);
  if (used > workspace_bytes) return cudaErrorInvalidValue;
  size_t temp_bytes = workspace_bytes - used;
  const unsigned blocks = static_cast<unsigned>((n + 255) / 256);
  lora_keys_kernel<<<blocks, 256, 0, stream>>>(ids, sorted, n, static_cast<int>(k), token_slot,
                                               static_cast<int>(slots), static_cast<int>(E), keys, vals);
  cudaError_t e = cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys, keys_out, vals, rows, static_cast<int>(n), 0,
                                                  end_bit, stream);
  if (e != cudaSuccess) return e;
  lora_perm_kernel<<<blocks, 256, 0, stream>>>(sorted, rows, n, static_cast<int>(k), perm_x, perm_y);
  offsets_kernel<<<static_cast<unsigned>((G + 1 + 255) / 256), 256, 0, stream>>>(keys_out, n, G, seg_indptr);
  return cudaGetLastError();
}

}  // namespace hylora::cuda
