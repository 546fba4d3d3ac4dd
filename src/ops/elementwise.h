#pragma once
// Pointwise and normalisation ops. Every tensor argument may be a strided 2-D view [rows, width] (ld); outputs may
// alias inputs where noted.
#include <cmath>

#include "core/exec_ctx.h"

namespace hylora::ops {

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
// torch softplus with threshold 20: returns x when x > 20.
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

// RMSNorm over consecutive groups of `group` elements of each row of x [n, W] (group = W for a whole-row norm; the
// per-head q/k norms use group = head_dim); w has `group` entries:
//   kPlain:   y = w * (x * rsqrt(mean(x²) + eps))          (Llama / Nemotron / DeepSeek)
//   kOnePlus: y = (1 + w) * (x * rsqrt(mean(x²) + eps))    (Qwen3.5 zero-centred norm)
// y [n, W] may alias x.
enum class NormKind { kPlain, kOnePlus };
void rms_norm(ExecCtx& ctx, const Tensor& x, const Tensor& w, int64_t group, float eps, NormKind kind, Tensor& y);

// y += x.
void add(ExecCtx& ctx, const Tensor& x, Tensor& y);
// y += s[r] · x per row r (s [n] float32; e.g. the shared-expert gate).
void add_row_scaled(ExecCtx& ctx, const Tensor& x, const Tensor& s, Tensor& y);
// y = sigmoid(y) in place.
void sigmoid_inplace(ExecCtx& ctx, Tensor& y);
// o *= sigmoid(gate) elementwise (Qwen3.5 attention output gate). o, gate [n, W].
void mul_sigmoid(ExecCtx& ctx, const Tensor& gate, Tensor& o);
// Gated-MLP activation: x = [gate | up] [n, 2I] -> y [n, I], y = silu(gate) · up.
void silu_mul_halves(ExecCtx& ctx, const Tensor& x, Tensor& y);
// y = relu(y)² in place.
void relu2_inplace(ExecCtx& ctx, Tensor& y);
// x [n, heads·2D] with each head [first D | second D] -> a, b [n, heads·D] (Qwen3.5 q_proj: [query | gate] per head).
void split_head_halves(ExecCtx& ctx, const Tensor& x, int64_t head_dim, Tensor& a, Tensor& b);
// y[i] = x[rows[i]] (rows int32 [R]); x [n, W], y [R, W].
void gather_rows(ExecCtx& ctx, const Tensor& x, const Tensor& rows, Tensor& y);
// y[n] = table[ids[n]]; table [V, H] float32, ids [n] int32.
void embedding(ExecCtx& ctx, const Tensor& table, const Tensor& ids, Tensor& y);
// dst = src (same shape, both on ctx's device, either may be strided 2-D views). The device-capable copy_into.
void copy(ExecCtx& ctx, const Tensor& src, Tensor& dst);
// Gated DeltaNet gates (Qwen3.5): beta = sigmoid(b), g = neg_A · softplus(a + dt_bias) per row and value head.
// b, a [T, Hv] (ld); neg_A, dt_bias [Hv]; g, beta [T, Hv]. An op (not a host loop) so it runs on the step's device.
void gdn_gates(ExecCtx& ctx, const Tensor& b, const Tensor& a, const Tensor& neg_A, const Tensor& dt_bias, Tensor& g,
               Tensor& beta);

}  // namespace hylora::ops
