#pragma once
// The one entry point every projection goes through: y = x Wᵀ (+ b), plus the LoRA delta of each active adapter
// over each of the projection's LoRA slices (lora.md §2). Models declare a Linear per (possibly fused) projection;
// the LoRA registry reads the declared slices, so there are no per-model branches in the LoRA code.
#include <string>
#include <vector>

#include "core/tensor.h"

namespace hylora {

struct ForwardBatch;

// A contiguous range of a fused projection's output that one PEFT module owns.
struct LoraSlice {
  std::string module;   // PEFT module path relative to the model root, e.g. "model.layers.3.self_attn.q_proj"
  int64_t out_offset;   // first output row of the slice in the fused weight
  int64_t out_size;     // rows
};

struct Linear {
  std::string name;     // engine-side name, e.g. "model.layers.3.self_attn.qkv" (for messages)
  Tensor weight;        // [out, in]
  Tensor bias;          // [out] or undefined
  std::vector<LoraSlice> slices;  // in output order; empty = the projection takes no LoRA
  int lora_id = -1;     // index assigned by the model's LoRA target table

  int64_t in_features() const { return weight.dim(1); }
  int64_t out_features() const { return weight.dim(0); }
};

namespace ops {

// y[N, out] = x[N, in] Wᵀ (+ b) (+ LoRA deltas for the rows of `batch` bound to an adapter).
Tensor linear(const Linear& lin, const Tensor& x, const ForwardBatch& batch);

// Plain GEMM without LoRA: y[N, out] = x[N, in] Wᵀ, W [out, in].
Tensor matmul_nt(const Tensor& x, const Tensor& w);
// y += x Wᵀ (accumulate), shapes as matmul_nt.
void matmul_nt_acc(const Tensor& x, const Tensor& w, Tensor& y);

}  // namespace ops
}  // namespace hylora
