#pragma once
// Small pointwise and normalisation ops, float32 on the host.
#include "core/tensor.h"

namespace hylora::ops {

// RMSNorm over the last dim of x [.., D]:
//   kPlain:   y = w * (x * rsqrt(mean(x²) + eps))          (Llama / Nemotron / DeepSeek)
//   kOnePlus: y = (1 + w) * (x * rsqrt(mean(x²) + eps))    (Qwen3.5 zero-centred norm)
enum class NormKind { kPlain, kOnePlus };
Tensor rms_norm(const Tensor& x, const Tensor& w, float eps, NormKind kind);
// In place over consecutive groups of `group` elements of each row (per-head q/k norms): w has `group` entries.
void rms_norm_groups_inplace(Tensor& x, const Tensor& w, int64_t group, float eps, NormKind kind);

float silu(float x);
float sigmoid(float x);
float softplus(float x);  // torch threshold 20: returns x when x > 20

void add_inplace(Tensor& y, const Tensor& x);  // y += x

// Gated-MLP activation: x = [gate | up] [rows, 2I] -> a [rows, I], a = silu(gate) · up.
Tensor silu_gate_halves(const Tensor& x);

// Embedding lookup: out[n] = table[ids[n]] ; table [V, H].
Tensor embedding(const Tensor& table, const std::vector<int32_t>& ids);

}  // namespace hylora::ops
