// moe_permute_by_slot (math in moe_permute.h): composite keys, CUB's stable radix sort of (key, pair), each bucket's
// first sorted row by binary search, then a one-block pass for the per-expert counts of base pairs (E ≤ a few
// hundred) and the LoRA segments (non-empty ones first), and a scatter of the adapter pairs into their compacted
// LoRA order.
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>

#include "ops/cuda/moe_permute.h"

namespace hylora::cuda {

namespace {
constexpr int kSegmentsThreads = 1024;  // segments_kernel's one block

__global__ void keys_kernel(const int32_t* __restrict__ ids, int64_t n, int k, const int32_t* __restrict__ row_slot,
                            int slots, int32_t* keys, int32_t* vals) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= n) return;
  keys[p] = ids[p] * (slots + 1) + row_slot[p / k] + 1;
  vals[p] = static_cast<int32_t>(p);
}

// bucket_off[b] = first sorted row whose key ≥ b, for b in [0, B].
__global__ void bucket_offsets_kernel(const int32_t* __restrict__ keys, int64_t n, int64_t B, int32_t* bucket_off) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b > B) return;
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (keys[mid] < b) lo = mid + 1; else hi = mid;
  }
  bucket_off[b] = static_cast<int32_t>(lo);
}

// One block of kSegmentsThreads: expert offsets, base_incl[e] = base pairs of experts 0..e (so the adapter pair at sorted row i of
// expert e is adapter pair number i − base_incl[e]), then the LoRA segments: the non-empty (expert, slot) buckets
// first, in expert-major order (a ballot scan over the E·slots buckets), then the empty ones (indptr repeated at the
// total, group 0). With at most min(E·slots, n) non-empty segments, callers may launch over that many only.
__global__ void segments_kernel(const int32_t* __restrict__ bucket_off, int E, int slots, int64_t n,
                                int32_t* expert_offsets, int32_t* base_incl, int32_t* lora_indptr,
                                int32_t* lora_group) {
  using Scan = cub::BlockScan<int32_t, kSegmentsThreads>;
  __shared__ typename Scan::TempStorage scan_tmp;
  __shared__ int s_base, s_carry, s_cnt[32];
  const int S1 = slots + 1, lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  if (threadIdx.x == 0) s_base = s_carry = 0;
  __syncthreads();
  // base_incl: a block-wide inclusive scan of the experts' base-pair counts, kSegmentsThreads experts at a time.
  // (It was a loop of thread 0 over E: 17 µs of a decode step's MoE layer at E = 256 on an H200.)
  for (int e0 = 0; e0 < E; e0 += kSegmentsThreads) {
    const int e = e0 + static_cast<int>(threadIdx.x);
    const int32_t cnt = e < E ? bucket_off[e * S1 + 1] - bucket_off[e * S1] : 0;
    int32_t incl = 0, total = 0;
    Scan(scan_tmp).InclusiveSum(cnt, incl, total);
    if (e < E) base_incl[e] = s_carry + incl;
    __syncthreads();  // every thread read s_carry and scan_tmp is free again
    if (threadIdx.x == 0) s_carry += total;
    __syncthreads();
  }
  for (int e = threadIdx.x; e <= E; e += blockDim.x) expert_offsets[e] = e < E ? bucket_off[e * S1] : static_cast<int32_t>(n);
  const int G = E * slots;
  for (int g0 = 0; g0 < G; g0 += blockDim.x) {
    const int g = g0 + threadIdx.x;
    int e = 0, s = 0, b = 0, len = 0;
    if (g < G) {
      e = g / slots;
      s = g % slots;
      b = bucket_off[e * S1 + 1 + s];
      len = bucket_off[e * S1 + 2 + s] - b;  // s = slots − 1: the next expert's first bucket, or bucket_off[B]
    }
    const unsigned m = __ballot_sync(0xffffffffu, len > 0);
    if (lane == 0) s_cnt[w] = __popc(m);
    __syncthreads();
    int pos = s_base + __popc(m & ((1u << lane) - 1u));
    for (int i = 0; i < w; ++i) pos += s_cnt[i];
    if (len > 0) {
      lora_indptr[pos] = b - base_incl[e];
      lora_group[pos] = s * E + e;
    }
    __syncthreads();
    if (threadIdx.x == 0)
      for (int i = 0; i < nw; ++i) s_base += s_cnt[i];
    __syncthreads();
  }
  if (G == 0) return;
  const int32_t total = static_cast<int32_t>(n) - base_incl[E - 1];
  for (int q = s_base + threadIdx.x; q < G; q += blockDim.x) {
    lora_indptr[q] = total;
    lora_group[q] = 0;  // any valid pool index: the segment is empty
  }
  if (threadIdx.x == 0) lora_indptr[G] = total;
}

__global__ void lora_perm_kernel(const int32_t* __restrict__ keys, int64_t n, int slots,
                                 const int32_t* __restrict__ base_incl, int32_t* lora_perm) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int32_t key = keys[i], e = key / (slots + 1);
  if (key % (slots + 1) == 0) return;  // a base pair
  lora_perm[i - base_incl[e]] = static_cast<int32_t>(i);
}

int end_bit_for(int64_t max_key) {
  int b = 1;
  while ((int64_t{1} << b) <= max_key) ++b;
  return b;
}

size_t align256(size_t x) { return (x + 255) / 256 * 256; }

}  // namespace

size_t moe_permute_by_slot_workspace_bytes(int64_t n, int64_t E, int64_t slots) {
  size_t temp = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, temp, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                  static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                  static_cast<int>(n), 0, 32);
  const size_t ints = 3 * static_cast<size_t>(n) + static_cast<size_t>(E * (slots + 1) + 1) + static_cast<size_t>(E);
  return align256(ints * sizeof(int32_t)) + temp + 256;
}

cudaError_t moe_permute_by_slot(const int32_t* ids, int64_t n, int64_t k, const int32_t* row_slot, int64_t E,
                                int64_t slots, int32_t* pair, int32_t* expert_offsets, int32_t* lora_perm,
                                int32_t* lora_indptr, int32_t* lora_group, void* workspace, size_t workspace_bytes,
                                cudaStream_t stream) {
  const int64_t B = E * (slots + 1);
  char* ws = static_cast<char*>(workspace);
  int32_t* keys = reinterpret_cast<int32_t*>(ws);
  int32_t* vals = keys + n;
  int32_t* keys_sorted = vals + n;
  int32_t* bucket_off = keys_sorted + n;  // [B + 1]
  int32_t* base_incl = bucket_off + B + 1;  // [E]
  char* temp = ws + align256(reinterpret_cast<char*>(base_incl + E) - ws);
  if (static_cast<size_t>(temp - ws) > workspace_bytes) return cudaErrorInvalidValue;
  size_t temp_bytes = workspace_bytes - static_cast<size_t>(temp - ws);
  const unsigned blocks = static_cast<unsigned>((n + 255) / 256);
  if (n > 0) {
    keys_kernel<<<blocks, 256, 0, stream>>>(ids, n, static_cast<int>(k), row_slot, static_cast<int>(slots), keys, vals);
    const cudaError_t e = cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys, keys_sorted, vals, pair,
                                                          static_cast<int>(n), 0, end_bit_for(B), stream);
    if (e != cudaSuccess) return e;
  }
  bucket_offsets_kernel<<<static_cast<unsigned>((B + 1 + 255) / 256), 256, 0, stream>>>(keys_sorted, n, B, bucket_off);
  segments_kernel<<<1, kSegmentsThreads, 0, stream>>>(bucket_off, static_cast<int>(E), static_cast<int>(slots), n, expert_offsets,
                                         base_incl, lora_indptr, lora_group);
  if (n > 0 && slots > 0)
    lora_perm_kernel<<<blocks, 256, 0, stream>>>(keys_sorted, n, static_cast<int>(slots), base_incl, lora_perm);
  return cudaGetLastError();
}

}  // namespace hylora::cuda
