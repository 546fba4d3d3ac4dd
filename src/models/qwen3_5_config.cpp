#include "models/qwen3_5_config.h"

#include <cmath>

namespace hylora::qwen3_5 {

namespace {

std::string str(int64_t v) { return std::to_string(v); }

LayerType layer_type_from_name(const std::string& s, size_t i, const std::string& where) {
  // transformers 5.17 spells them linear_attention / full_attention; remap_legacy_layer_types accepts the short forms.
  if (s == "linear_attention" || s == "linear") return LayerType::kLinearAttention;
  if (s == "full_attention" || s == "attention" || s == "full") return LayerType::kFullAttention;
  fail(where, ": layer_types[", i, "] = \"", s,
       "\" is not a Qwen3.5 layer type (expected linear_attention or full_attention)");
}

std::vector<LayerType> read_layers(const ConfigReader& c, int64_t num_layers) {
  std::vector<LayerType> out;
  if (c.has("layer_types")) {
    const json& v = c.raw().at("layer_types");
    if (!v.is_array()) fail(c.where(), ": field \"layer_types\" must be a list of strings, found ", v.dump());
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) fail(c.where(), ": layer_types[", i, "] must be a string, found ", v[i].dump());
      out.push_back(layer_type_from_name(v[i].get<std::string>(), i, c.where()));
    }
    config_require(static_cast<int64_t>(out.size()) == num_layers, c.where(),
            "layer_types has " + str(out.size()) + " entries, expected num_hidden_layers = " + str(num_layers));
    return out;
  }
  // HF __post_init__: full attention every `full_attention_interval` layers, at (i+1) % interval == 0.
  const int64_t interval = c.get<int64_t>("full_attention_interval", 4);
  config_require(interval > 0, c.where(), "full_attention_interval must be positive, found " + str(interval));
  for (int64_t i = 0; i < num_layers; ++i)
    out.push_back((i + 1) % interval == 0 ? LayerType::kFullAttention : LayerType::kLinearAttention);
  return out;
}

// rope_parameters (transformers 5), else the legacy rope_scaling / rope_theta; partial_rotary_factor from
// rope_parameters, else top level (HF merges it in), else 0.25.
void read_rope(const ConfigReader& c, Config& k) {
  const char* key = c.has("rope_parameters") ? "rope_parameters" : (c.has("rope_scaling") ? "rope_scaling" : nullptr);
  double factor = c.get<double>("partial_rotary_factor", 0.25);
  k.rope_theta = c.get<double>("rope_theta", 10000.0);
  if (key) {
    ConfigReader r = c.sub(key);
    std::string type = r.has("rope_type") ? r.get<std::string>("rope_type") : r.get<std::string>("type", "default");
    config_require(type == "default" || type == "mrope", r.where(),
            "rope_type \"" + type + "\" is not supported for Qwen3.5 (expected default)");
    k.rope_theta = r.get<double>("rope_theta", k.rope_theta);
    factor = r.get<double>("partial_rotary_factor", factor);
  }
  config_require(factor > 0 && factor <= 1, c.where(), "partial_rotary_factor must be in (0, 1], found " +
                                                    std::to_string(factor));
  config_require(k.rope_theta > 0, c.where(), "rope_theta must be positive");
  k.rotary_dim = static_cast<int64_t>(static_cast<double>(k.head_dim) * factor);  // int() truncation, as HF
  config_require(k.rotary_dim > 0 && k.rotary_dim % 2 == 0, c.where(),
          "head_dim (" + str(k.head_dim) + ") × partial_rotary_factor (" + std::to_string(factor) +
              ") must give a positive even rotary dim, found " + str(k.rotary_dim));
}

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

}  // namespace

Config parse_config(const json& j, const std::string& where) {
  ConfigReader top(j, where);
  Config k;
  std::string arch;
  if (top.has("architectures") && top.raw().at("architectures").is_array() && !top.raw().at("architectures").empty() &&
      top.raw().at("architectures")[0].is_string())
    arch = top.raw().at("architectures")[0].get<std::string>();
  const std::string model_type = top.get<std::string>("model_type", "");
  const bool composite = top.has("text_config");
  ConfigReader c = composite ? top.sub("text_config") : top;
  const std::string text_type = c.get<std::string>("model_type", "");
  k.moe = !arch.empty() ? contains(arch, "Moe") : (contains(model_type, "moe") || contains(text_type, "moe"));
  k.conditional_generation = !arch.empty() ? contains(arch, "ConditionalGeneration") : composite;
  // §1.9: tying follows the checkpoint class's own config: the top-level flag for …ForConditionalGeneration, the
  // text config's flag for …ForCausalLM (even when that class reads a composite config's text_config).
  k.tie_word_embeddings = k.conditional_generation ? top.get<bool>("tie_word_embeddings", false)
                                                   : c.get<bool>("tie_word_embeddings", false);

  k.vocab_size = c.get<int64_t>("vocab_size", 248320);
  k.hidden_size = c.get<int64_t>("hidden_size", k.moe ? 2048 : 4096);
  const int64_t num_layers = c.get<int64_t>("num_hidden_layers", k.moe ? 40 : 32);
  config_require(num_layers > 0, c.where(), "num_hidden_layers must be positive, found " + str(num_layers));
  k.eps = c.get<float>("rms_norm_eps", 1e-6f);
  k.num_heads = c.get<int64_t>("num_attention_heads", 16);
  k.num_kv_heads = c.get<int64_t>("num_key_value_heads", k.moe ? 2 : 4);
  k.head_dim = c.get<int64_t>("head_dim", 256);
  k.attention_bias = c.get<bool>("attention_bias", false);
  const std::string act = c.get<std::string>("hidden_act", "silu");
  config_require(act == "silu" || act == "swish", c.where(),
          "hidden_act \"" + act + "\" is not supported (expected silu; it is the MLP and the GDN conv activation)");
  k.conv_kernel = c.get<int64_t>("linear_conv_kernel_dim", 4);
  k.key_head_dim = c.get<int64_t>("linear_key_head_dim", 128);
  k.value_head_dim = c.get<int64_t>("linear_value_head_dim", 128);
  k.num_key_heads = c.get<int64_t>("linear_num_key_heads", 16);
  k.num_value_heads = c.get<int64_t>("linear_num_value_heads", 32);
  k.layers = read_layers(c, num_layers);
  read_rope(c, k);
  if (k.moe) {
    k.num_experts = c.get<int64_t>("num_experts", 256);
    k.num_experts_per_tok = c.get<int64_t>("num_experts_per_tok", 8);
    k.moe_intermediate_size = c.get<int64_t>("moe_intermediate_size", 512);
    k.shared_expert_intermediate_size = c.get<int64_t>("shared_expert_intermediate_size", 512);
  } else {
    k.intermediate_size = c.get<int64_t>("intermediate_size", 12288);
  }

  config_require(k.vocab_size > 0 && k.hidden_size > 0, c.where(), "vocab_size and hidden_size must be positive");
  config_require(k.eps > 0, c.where(), "rms_norm_eps must be positive");
  config_require(k.num_heads > 0 && k.num_kv_heads > 0 && k.head_dim > 0 && k.num_heads % k.num_kv_heads == 0, c.where(),
          "num_attention_heads (" + str(k.num_heads) + ") must be a positive multiple of num_key_value_heads (" +
              str(k.num_kv_heads) + ")");
  config_require(k.conv_kernel > 0 && k.key_head_dim > 0 && k.value_head_dim > 0, c.where(),
          "linear_conv_kernel_dim, linear_key_head_dim and linear_value_head_dim must be positive");
  config_require(k.num_key_heads > 0 && k.num_value_heads > 0 && k.num_value_heads % k.num_key_heads == 0, c.where(),
          "linear_num_value_heads (" + str(k.num_value_heads) + ") must be a positive multiple of "
          "linear_num_key_heads (" + str(k.num_key_heads) + ")");
  if (k.moe) {
    config_require(k.num_experts > 0 && k.moe_intermediate_size > 0 && k.shared_expert_intermediate_size > 0, c.where(),
            "num_experts, moe_intermediate_size and shared_expert_intermediate_size must be positive");
    config_require(k.num_experts_per_tok > 0 && k.num_experts_per_tok <= k.num_experts, c.where(),
            "num_experts_per_tok (" + str(k.num_experts_per_tok) + ") must be in [1, num_experts = " +
                str(k.num_experts) + "]");
  } else {
    config_require(k.intermediate_size > 0, c.where(), "intermediate_size must be positive");
  }
  return k;
}

}  // namespace hylora::qwen3_5
