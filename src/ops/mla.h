#pragma once
// Multi-head latent attention in its weight-absorbed form (DeepSeek-V2/V3), over a paged cache of the compressed
// latent: per token c [Ckv] (kv_a_layernorm'd) and the shared rope key k_r [Dr], stored [pages, page_size, Ckv + Dr].
// With kv_b_proj W [nH·(Dn + Dv), Ckv] (per head rows [W_k,h (Dn) | W_v,h (Dv)]) the per-head keys and values are
// k_h(j) = [W_k,h c_j | k_r(j)], v_h(j) = W_v,h c_j, so for a query q_h = [q_n (Dn) | q_r (Dr)]:
//   score(j) = (W_k,hᵀ q_n) · c_j + q_r · k_r(j)          (the latent query W_k,hᵀ q_n is computed once per row)
//   o_h      = W_v,h · Σ_j softmax_j(score · scale) c_j
// which equals attention over the decompressed K/V without ever materialising them.
#include <vector>

#include "core/exec_ctx.h"
#include "ops/varlen.h"

namespace hylora::ops {

// q [T, nH·(Dn + Dr)] (ld), rope already applied to each head's q_r; cache [pages, page_size, Ckv + Dr] holding this
// step's rows. `kvb` lists kv_b_proj weights [nH·(Dn + Dv), Ckv] (the base weight, and effective weights of
// adapters that change it); row t uses kvb[kvb_of_row[t]] (int32 [T]). o [T, nH·Dv].
void mla_attention(ExecCtx& ctx, const Tensor& q, const Tensor& cache, const SeqLayout& layout,
                   const std::vector<Tensor>& kvb, const Tensor& kvb_of_row, int64_t num_heads, int64_t nope_dim,
                   int64_t v_dim, float scale, Tensor& o);

}  // namespace hylora::ops
