#pragma once
// Nemotron-H config.json (models.md §2.1), read the way transformers 5.17 NemotronHConfig reads it: the per-layer
// block list from `layers_block_type` (alias `layer_types`), else the legacy `hybrid_override_pattern` string
// (M = Mamba2, E = MoE, * = attention, - = MLP); legacy Mamba kwarg names (`mamba_n_groups`, `mamba_d_conv`,
// `mamba_dt_min`, `mamba_conv_bias`, ...) take precedence over the new names, as in HF's __post_init__.
#include <string>
#include <vector>

#include "io/config.h"

namespace hylora::nemotron_h {

enum class BlockType { kMamba, kAttention, kMlp, kMoe };
const char* block_type_name(BlockType t);

// "M-M*-E" -> {kMamba, kMlp, kMamba, kAttention, kMlp, kMoe}; an unknown letter is an error naming `where`, the
// letter and its position.
std::vector<BlockType> parse_hybrid_override_pattern(const std::string& pattern, const std::string& where);

struct Config {
  int64_t vocab_size = 0, hidden_size = 0;  // V, H
  std::vector<BlockType> layers;
  float eps = 1e-5f;  // layer_norm_epsilon: every RMSNorm (block norms, norm_f, Mamba gated norm)

  // Attention (no rope, no bias).
  int64_t num_heads = 32, num_kv_heads = 8, head_dim = 128;
  // Dense MLP (relu², non-gated).
  int64_t intermediate_size = 21504;
  bool mlp_bias = false;
  // Mamba2: I = nh·hd, conv_dim = I + 2·G·N.
  int64_t mamba_num_heads = 128, mamba_head_dim = 64, ssm_state_size = 128, n_groups = 8, conv_kernel = 4;
  bool use_conv_bias = true, use_bias = false;
  float time_step_min = 0.001f;
  // MoE.
  int64_t n_routed_experts = 8, num_experts_per_tok = 2, moe_intermediate_size = 7688,
          moe_shared_expert_intermediate_size = 7688, n_group = 1, topk_group = 1;
  int64_t moe_latent_size = 0;  // 0 = no latent projections (experts work at width H)
  float routed_scaling_factor = 1.0f;
  bool norm_topk_prob = true;

  int64_t mamba_inner() const { return mamba_num_heads * mamba_head_dim; }
  int64_t conv_dim() const { return mamba_inner() + 2 * n_groups * ssm_state_size; }
  int64_t moe_width() const { return moe_latent_size > 0 ? moe_latent_size : hidden_size; }  // L
};

// Parses and validates; errors name `where` (the config path) and the field.
Config parse_config(const json& j, const std::string& where);

}  // namespace hylora::nemotron_h
