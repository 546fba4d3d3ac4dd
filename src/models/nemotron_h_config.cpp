#include "models/nemotron_h_config.h"

#include <algorithm>

namespace hylora::nemotron_h {

const char* block_type_name(BlockType t) {
  switch (t) {
    case BlockType::kMamba: return "linear_attention (Mamba2)";
    case BlockType::kAttention: return "full_attention";
    case BlockType::kMlp: return "mlp";
    case BlockType::kMoe: return "moe";
  }
  return "?";
}

std::vector<BlockType> parse_hybrid_override_pattern(const std::string& pattern, const std::string& where) {
  std::vector<BlockType> out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    switch (pattern[i]) {
      case 'M': out.push_back(BlockType::kMamba); break;
      case 'E': out.push_back(BlockType::kMoe); break;
      case '*': out.push_back(BlockType::kAttention); break;
      case '-': out.push_back(BlockType::kMlp); break;
      default:
        fail(where, ": hybrid_override_pattern \"", pattern, "\" has the unknown letter '", pattern[i],
             "' at position ", i, " (expected M = Mamba2, E = MoE, * = attention, - = MLP)");
    }
  }
  if (out.empty()) fail(where, ": hybrid_override_pattern is empty (need at least one layer)");
  return out;
}

namespace {

BlockType block_type_from_name(const std::string& s, size_t i, const std::string& where) {
  // transformers 5.17 spells them linear_attention / full_attention / mlp / moe; earlier releases mamba / attention.
  if (s == "linear_attention" || s == "mamba") return BlockType::kMamba;
  if (s == "full_attention" || s == "attention") return BlockType::kAttention;
  if (s == "mlp") return BlockType::kMlp;
  if (s == "moe") return BlockType::kMoe;
  fail(where, ": layers_block_type[", i, "] = \"", s,
       "\" is not a Nemotron-H block type (expected linear_attention, full_attention, mlp or moe)");
}

std::vector<BlockType> read_layers(const ConfigReader& c) {
  for (const char* key : {"layers_block_type", "layer_types"}) {
    if (!c.has(key)) continue;
    const json& v = c.raw().at(key);
    if (!v.is_array() || v.empty()) fail(c.where(), ": field \"", key, "\" must be a non-empty list of strings");
    std::vector<BlockType> out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) fail(c.where(), ": ", key, "[", i, "] must be a string, found ", v[i].dump());
      out.push_back(block_type_from_name(v[i].get<std::string>(), i, c.where()));
    }
    return out;
  }
  if (c.has("hybrid_override_pattern"))
    return parse_hybrid_override_pattern(c.get<std::string>("hybrid_override_pattern"), c.where());
  return {BlockType::kMamba, BlockType::kMoe, BlockType::kAttention, BlockType::kMlp};  // HF default
}

// The legacy kwarg name wins when present (HF pops it over the new name in __post_init__).
template <typename T>
T get_legacy(const ConfigReader& c, const char* legacy, const char* name, const T& fallback) {
  return c.has(legacy) ? c.get<T>(legacy) : c.get<T>(name, fallback);
}

}  // namespace

Config parse_config(const json& j, const std::string& where) {
  ConfigReader c(j, where);
  Config k;
  k.vocab_size = c.get<int64_t>("vocab_size", 131072);
  k.hidden_size = c.get<int64_t>("hidden_size", 4096);
  k.layers = read_layers(c);
  k.eps = c.get<float>("layer_norm_epsilon", 1e-5f);

  k.num_heads = c.get<int64_t>("num_attention_heads", 32);
  k.num_kv_heads = c.get<int64_t>("num_key_value_heads", k.num_heads);
  k.head_dim = c.get<int64_t>("head_dim", 128);

  k.intermediate_size = c.get<int64_t>("intermediate_size", 21504);
  k.mlp_bias = c.get<bool>("mlp_bias", false);
  const std::string mlp_act = c.get<std::string>("mlp_hidden_act", "relu2");
  config_require(mlp_act == "relu2", where, "mlp_hidden_act \"" + mlp_act + "\" is not supported (expected relu2)");

  k.mamba_num_heads = c.get<int64_t>("mamba_num_heads", 128);
  k.mamba_head_dim = c.get<int64_t>("mamba_head_dim", 64);
  k.ssm_state_size = c.get<int64_t>("ssm_state_size", 128);
  k.n_groups = get_legacy<int64_t>(c, "mamba_n_groups", "n_groups", 8);
  k.conv_kernel = get_legacy<int64_t>(c, "mamba_d_conv", "conv_kernel", 4);
  k.use_conv_bias = get_legacy<bool>(c, "mamba_conv_bias", "use_conv_bias", true);
  k.use_bias = c.get<bool>("use_bias", false);  // mamba_proj_bias is not read by HF
  k.time_step_min = get_legacy<float>(c, "mamba_dt_min", "time_step_min", 0.001f);
  const std::string mamba_act = c.get<std::string>("mamba_hidden_act", "silu");
  config_require(mamba_act == "silu" || mamba_act == "swish", where,
          "mamba_hidden_act \"" + mamba_act + "\" is not supported (expected silu)");

  k.n_routed_experts = c.has("n_routed_experts") ? c.get<int64_t>("n_routed_experts")
                                                 : c.get<int64_t>("num_local_experts", 8);
  k.num_experts_per_tok = c.get<int64_t>("num_experts_per_tok", 2);
  k.moe_intermediate_size = c.get<int64_t>("moe_intermediate_size", 7688);
  k.moe_shared_expert_intermediate_size = c.get<int64_t>("moe_shared_expert_intermediate_size", 7688);
  k.n_group = c.get<int64_t>("n_group", 1);
  k.topk_group = c.get<int64_t>("topk_group", 1);
  k.moe_latent_size = c.get<int64_t>("moe_latent_size", 0);
  k.routed_scaling_factor = c.get<float>("routed_scaling_factor", 1.0f);
  k.norm_topk_prob = c.get<bool>("norm_topk_prob", true);

  auto any = [&](BlockType t) { return std::find(k.layers.begin(), k.layers.end(), t) != k.layers.end(); };
  config_require(k.vocab_size > 0 && k.hidden_size > 0, where, "vocab_size and hidden_size must be positive");
  config_require(k.eps > 0, where, "layer_norm_epsilon must be positive");
  if (any(BlockType::kAttention))
    config_require(k.num_heads > 0 && k.num_kv_heads > 0 && k.head_dim > 0 && k.num_heads % k.num_kv_heads == 0, where,
            "num_attention_heads (" + std::to_string(k.num_heads) + ") must be a positive multiple of "
            "num_key_value_heads (" + std::to_string(k.num_kv_heads) + ")");
  if (any(BlockType::kMamba)) {
    config_require(k.mamba_num_heads > 0 && k.mamba_head_dim > 0 && k.ssm_state_size > 0 && k.conv_kernel > 0, where,
            "Mamba sizes (mamba_num_heads, mamba_head_dim, ssm_state_size, conv_kernel) must be positive");
    config_require(k.n_groups > 0 && k.mamba_num_heads % k.n_groups == 0, where,
            "mamba_num_heads (" + std::to_string(k.mamba_num_heads) + ") must be a multiple of n_groups (" +
                std::to_string(k.n_groups) + ")");
  }
  if (any(BlockType::kMoe)) {
    const int64_t E = k.n_routed_experts;
    config_require(E > 0 && k.n_group > 0 && E % k.n_group == 0 && E / k.n_group >= 2, where,
            "n_routed_experts (" + std::to_string(E) + ") must be a multiple of n_group (" +
                std::to_string(k.n_group) + ") with at least 2 experts per group");
    config_require(k.topk_group > 0 && k.topk_group <= k.n_group, where,
            "topk_group (" + std::to_string(k.topk_group) + ") must be in [1, n_group]");
    config_require(k.num_experts_per_tok > 0 && k.num_experts_per_tok <= k.topk_group * (E / k.n_group), where,
            "num_experts_per_tok (" + std::to_string(k.num_experts_per_tok) +
                ") must be in [1, topk_group * n_routed_experts / n_group]");
    config_require(k.moe_latent_size >= 0, where, "moe_latent_size must be positive or null");
  }
  return k;
}

}  // namespace hylora::nemotron_h
