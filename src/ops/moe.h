#pragma once
// Mixture-of-experts: routing (which experts, with which weights) and the expert MLPs.
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ops/linear.h"

namespace hylora {

struct ForwardBatch;

// One projection of all experts: weight [E, out, in] (HF in-memory layout, (E, out, in)). LoRA slices are per-expert
// (a slice covers output rows [out_offset, out_offset+out_size) of every expert's matrix).
struct ExpertLinear {
  std::string name;
  Tensor weight;  // [E, out, in]
  std::vector<LoraSlice> slices;
  int lora_id = -1;
  int64_t num_experts() const { return weight.dim(0); }
  int64_t out_features() const { return weight.dim(1); }
  int64_t in_features() const { return weight.dim(2); }
};

namespace ops {

// Top-k choice per token: ids [N, k] and weights [N, k] (row-major).
struct Routing {
  int64_t k = 0;
  std::vector<int32_t> ids;
  std::vector<float> weights;
};

// Qwen3.5-MoE / Qwen3-MoE: p = softmax(logits) (fp32); top-k by p; weights = p of the chosen experts, renormalised
// to sum 1 when `normalize` (Qwen3.5 always; Qwen3-MoE's norm_topk_prob).   logits [N, E]
Routing route_softmax_topk(const Tensor& logits, int64_t k, bool normalize);

// DeepSeek-V3 / Nemotron-H: s = sigmoid(logits); selection by s + bias within the best `topk_group` of `n_group`
// contiguous groups (group score = sum of the group's top-2 of s + bias); weights = s of the chosen experts,
// optionally renormalised (÷ (sum + 1e-20)), times `scale`.   logits [N, E], bias [E]
Routing route_sigmoid_grouped(const Tensor& logits, const Tensor& bias, int64_t n_group, int64_t topk_group,
                              int64_t k, bool normalize, float scale);

enum class ExpertActivation {
  kSiluGated,  // up is [gate | up] (2I rows): h = silu(gate) * up
  kRelu2,      // up is I rows: h = relu(up)²
};

// out[N, H] = Σ_j w[t,j] · down_e( act( up_e(x_t) ) ), e = ids[t,j]; LoRA deltas (lora.md §4) added to the up and
// down outputs of each expert before the activation / routing weight. x [N, in].
Tensor moe_experts(const Tensor& x, const Routing& routing, const ExpertLinear& up, const ExpertLinear& down,
                   ExpertActivation act, const ForwardBatch& batch);

}  // namespace ops
}  // namespace hylora
