#pragma once
// DeepSeek's interleaved RoPE (HF apply_rotary_pos_emb_interleave, used when config.rope_interleave is true).
#include <vector>

#include "core/exec_ctx.h"

namespace hylora::ops {

// On dims [offset, offset + rot) of every head of x [n, heads·D] (ld), in place: pair i = (a, b) = (x[2i], x[2i+1])
// is rotated by angle[t,i] = pos[t] · inv_freq[i] (float32) and written back DE-INTERLEAVED, halves layout:
//   x'[i] = a·cos − b·sin,   x'[rot/2 + i] = b·cos + a·sin        (cos/sin times `attention_scaling`)
// i.e. HF's pairs → halves permutation followed by rope_neox. The output order matters only in that q and k get the
// same one (their dot product is what attention sees). Dims outside the range pass through. positions [n] int32.
void rope_interleaved(ExecCtx& ctx, Tensor& x, int64_t head_dim, const Tensor& positions,
                      const std::vector<float>& inv_freq, int64_t rot, int64_t offset = 0,
                      float attention_scaling = 1.0f);

// The permutation alone: dims [offset, offset + rot) of each head go from pairs (x0,x1),(x2,x3),.. to halves
// (x0,x2,..,x1,x3,..). Exposed for tests.
void rope_pairs_to_halves(Tensor& x, int64_t head_dim, int64_t rot, int64_t offset = 0);

}  // namespace hylora::ops
