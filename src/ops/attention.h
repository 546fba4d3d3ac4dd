#pragma once
// Causal softmax attention of a step's new rows against a paged KV cache (GQA), and the store of the new K/V rows.
// Cache layout per layer: K [pages, page_size, nKV, Dk], V [pages, page_size, nKV, Dv]; a token at cache slot
// p·page_size + o of a sequence lives in page p (= page_table[s][position / page_size]), offset o.
#include "core/exec_ctx.h"
#include "ops/varlen.h"

namespace hylora::ops {

// cache[kv_slots[t]] = x[t] for every row t with kv_slots[t] ≥ 0. x [T, W] (ld), cache [pages, page_size, W'] with
// W' = W (a K or V pool viewed per token).
void paged_store(ExecCtx& ctx, const Tensor& x, const SeqLayout& layout, Tensor& cache);

// q [T, nH·Dk] (ld); caches as above, already holding this step's rows. For row t of sequence s at position p:
//   o[t, h] = Σ_{j ≤ p} softmax_j(q[t,h] · K[s, j, kv(h)] · scale) · V[s, j, kv(h)],   kv(h) = h / (nH / nKV)
// o [T, nH·Dv].
void paged_attention(ExecCtx& ctx, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                     const SeqLayout& layout, int64_t num_heads, float scale, Tensor& o);

}  // namespace hylora::ops
