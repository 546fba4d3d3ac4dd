#pragma once
// Plain Qwen3 / Qwen3-MoE config.json (Qwen3ForCausalLM / Qwen3MoeForCausalLM, model_type qwen3 / qwen3_moe), read
// the way transformers 5.17 reads it, as a qwen3_5::Config: every layer full attention without the output gate,
// plain-weight RMSNorm, rope over the whole head (rope_parameters / rope_theta, default rope only), no shared expert.
// MoE layers: layer i is sparse unless i ∈ mlp_only_layers or (i+1) % decoder_sparse_step != 0 (then a dense MLP of
// intermediate_size); router weights renormalised only with norm_topk_prob. Sliding-window attention is refused.
#include <string>

#include "io/config.h"
#include "models/qwen3_5_config.h"

namespace hylora::qwen3 {

// Parses and validates; errors name `where` (the config path) and the field.
qwen3_5::Config parse_config(const json& j, const std::string& where);

}  // namespace hylora::qwen3
