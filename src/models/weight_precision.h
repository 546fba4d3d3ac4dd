#pragma once
// Which weights a reduced compute dtype (--dtype bfloat16 on the GPU) stores in that dtype. The policy: the big
// matrices that only GEMMs read — every Linear LoRA target (dense and fused projections, lm_head) unless marked
// `full_precision`, every ExpertLinear, the embedding table — go to the compute dtype; everything else (norm weights,
// biases, routers and gates, conv weights, A_log / dt_bias / D, MLA's kv_b_proj) stays float32, as do activations,
// caches, recurrent states and LoRA slot buffers. The executor applies it when it places the weights; models never
// look at the device or the dtype.
#include <vector>

#include "models/model.h"

namespace hylora {

// The weight tensors (inside the model; tied weights appear once per owner) to store in the compute dtype.
std::vector<Tensor*> compute_dtype_weights(Model& model);

}  // namespace hylora
