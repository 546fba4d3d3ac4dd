#pragma once
// Causal softmax attention of one sequence's new tokens against its cache.
#include <vector>

#include "core/tensor.h"

namespace hylora::ops {

// q [n, nH, Dqk] for the tokens at positions past_len .. past_len+n-1; k_cache [L, nKV, Dqk] and
// v_cache [L, nKV, Dv] hold ALL L = past_len + n tokens (the new ones already appended). GQA: query head h reads KV
// head h / (nH / nKV). Returns o [n, nH * Dv] (head-major).
//   o[t,h] = Σ_j softmax_j(q[t,h]·k[j,kv(h)] * scale) v[j,kv(h)],  j ≤ past_len + t
Tensor causal_attention(const Tensor& q, const float* k_cache, const float* v_cache, int64_t n_kv_heads,
                        int64_t dv, int64_t past_len, float scale);

}  // namespace hylora::ops
