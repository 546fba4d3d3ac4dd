// Attention over a paged KV cache (one layer).
//   K pool [num_pages, page_size, nKV, D],  V pool [num_pages, page_size, nKV, Dv]   (type dt)
//   cache token j of sequence s lives at page page_table[s*max_pages + j/page_size], offset j % page_size.
// Step metadata (device int32): cu_seqlens[S+1] (new rows of seq s are [cu[s], cu[s+1]) of q/o),
//   context_lens[S] (tokens in the cache after this step, the new ones included), page_table[S, max_pages].
// Causal: new row i of seq s is at position p = context_lens[s] - n_s + i and attends cache tokens 0..p:
//   o[t, h, :] = Σ_j softmax_j(scale · q[t, h, :]·K[j, h/(nH/nKV), :]) · V[j, h/(nH/nKV), :]
// q [T, nH*D] (ld ldq), o [T, nH*Dv] (ld ldo). D ≤ 576, Dv ≤ 512 (D may differ from Dv: MLA prefill 192/128,
// MLA weight-absorbed decode 576/512 over the latent cache).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/dtype.h"

namespace hylora::cuda {

struct PagedAttention {
  const void* q = nullptr;  // [T, nH*D] ld ldq
  int64_t ldq = 0;
  const void* k_pool = nullptr;  // [num_pages, page_size, nKV, D]
  const void* v_pool = nullptr;  // [num_pages, page_size, nKV, Dv]
  void* o = nullptr;             // [T, nH*Dv] ld ldo
  int64_t ldo = 0;
  const int32_t* cu_seqlens = nullptr;    // [S+1]
  const int32_t* context_lens = nullptr;  // [S]
  const int32_t* page_table = nullptr;    // [S, max_pages]
  int64_t S = 0, T = 0, nH = 0, nKV = 0, D = 0, Dv = 0, page_size = 0, max_pages = 0;
  float scale = 1.0f;
  // Elements between consecutive cache slots of the V pool; 0 = nKV*Dv (the layout above). MLA weight-absorbed
  // decode reads V from the latent K pool itself: v_pool = k_pool, v_token_stride = D (nKV = 1, V = first Dv dims).
  int64_t v_token_stride = 0;
};

// Writes the step's new K/V rows into the pools: for t < T with kv_slot[t] ≥ 0 (slot = page*page_size + offset;
// -1 = padding, skipped): K[slot, h, :] = k[t, h*D : (h+1)*D], V[slot, h, :] = v[t, h*Dv : (h+1)*Dv].
//   k [T, nKV*D] (ld ldk), v [T, nKV*Dv] (ld ldv), kv_slot [T] int32.
cudaError_t kv_store(DType dt, const void* k, int64_t ldk, const void* v, int64_t ldv, const int32_t* kv_slot,
                     int64_t T, void* k_pool, void* v_pool, int64_t nKV, int64_t D, int64_t Dv,
                     cudaStream_t stream);

// Varlen causal prefill (also correct for decode rows): flash-style, one pass over the keys with an online softmax.
// bf16 with D = Dv ∈ {64, 96, 128, 192, 256} or 192/128: mma.sync tensor-core kernel (attn_prefill_mma.h); other bf16
// D, Dv multiples of 16 up to 256: WMMA kernel; else a block handles up to 16 (token, head-of-a-GQA-group) rows that
// share one kv head, K/V tiles of 32 keys staged in shared memory. No workspace.
cudaError_t attention_prefill(DType dt, const PagedAttention& p, cudaStream_t stream);

// Split-KV attention (decode: one or few new rows per sequence, long contexts): the keys of each sequence are cut
// into nsplit = ceil(max_context / chunk) ranges (grid sized from max_context, a host-known bound ≥ every
// context_lens[s]); each range writes a partial output and log-sum-exp into `workspace`, a second kernel combines
// them. bf16 with D a multiple of 32 ≤ 256 and Dv ∈ {64, 128, 256}: the tensor-core kernel (attention_decode_mma.h),
// which cuts each sequence's own context into nsplit equal ranges (chunk: any size ≥ 1; the split count to ask for:
// attention_decode_splits); other shapes: ranges of `chunk` tokens, a multiple of 32.
// workspace: attention_decode_workspace_floats(p, max_context, chunk) floats of device memory.
size_t attention_decode_workspace_floats(const PagedAttention& p, int64_t max_context, int64_t chunk = 512);
cudaError_t attention_decode(DType dt, const PagedAttention& p, int64_t max_context, float* workspace,
                             cudaStream_t stream, int64_t chunk = 512);
// The split count attention_decode's tensor-core kernel wants at these shapes (host-known: shapes, max_context and the
// GPU's SM count), 0 where that kernel does not take the shapes (the caller keeps its own choice).
int64_t attention_decode_splits(DType dt, const PagedAttention& p, int64_t max_context);

}  // namespace hylora::cuda
