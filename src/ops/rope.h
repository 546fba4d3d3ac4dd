#pragma once
#include <vector>

#include "core/exec_ctx.h"

namespace hylora::ops {

// Inverse frequencies of rotary embeddings, computed in float32 as HF does: inv_freq[i] = 1 / theta^(2i/rot).
std::vector<float> rope_inv_freq(int64_t rot, double theta);

// "rotate_half" (GPT-NeoX style) RoPE on the first `rot` dims of every head of x [n, heads·D] (ld), in place:
//   x_r' = x_r cos + rotate_half(x_r) sin,  rotate_half(a) = cat(-a[rot/2:], a[:rot/2]),
//   angle[t,i] = pos[t] * inv_freq[i] (float32), cos/sin scaled by `attention_scaling` (YaRN; 1 otherwise).
// Dims past `rot` pass through. `offset` = first rotated dim inside each head (DeepSeek puts rope dims last).
// positions [n] int32.
void rope_neox(ExecCtx& ctx, Tensor& x, int64_t head_dim, const Tensor& positions, const std::vector<float>& inv_freq,
               int64_t rot, int64_t offset = 0, float attention_scaling = 1.0f);

}  // namespace hylora::ops
