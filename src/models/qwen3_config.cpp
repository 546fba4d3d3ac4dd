#include "models/qwen3_config.h"

#include <algorithm>

namespace hylora::qwen3 {

namespace {

std::string str(int64_t v) { return std::to_string(v); }

// rope_parameters (transformers 5), else the legacy rope_scaling / rope_theta; default rope only.
double read_rope_theta(const ConfigReader& c) {
  double theta = c.get<double>("rope_theta", 10000.0);
  const char* key = c.has("rope_parameters") ? "rope_parameters" : (c.has("rope_scaling") ? "rope_scaling" : nullptr);
  if (key) {
    ConfigReader r = c.sub(key);
    std::string type = r.has("rope_type") ? r.get<std::string>("rope_type") : r.get<std::string>("type", "default");
    config_require(type == "default", r.where(), "rope_type \"" + type + "\" is not supported for Qwen3 (expected default)");
    theta = r.get<double>("rope_theta", theta);
  }
  config_require(theta > 0, c.where(), "rope_theta must be positive");
  return theta;
}

// Sliding-window attention (use_sliding_window, or a sliding_attention entry in layer_types) is not implemented.
void refuse_sliding_window(const ConfigReader& c) {
  config_require(!c.get<bool>("use_sliding_window", false), c.where(),
                 "use_sliding_window: true is not supported (sliding-window attention is not implemented; only "
                 "full attention)");
  if (!c.has("layer_types")) return;
  const json& v = c.raw().at("layer_types");
  if (!v.is_array()) fail(c.where(), ": field \"layer_types\" must be a list of strings, found ", v.dump());
  for (size_t i = 0; i < v.size(); ++i)
    config_require(v[i] == "full_attention", c.where(),
                   "layer_types[" + str(static_cast<int64_t>(i)) + "] = " + v[i].dump() +
                       " is not supported (only full_attention; sliding-window attention is not implemented)");
}

// dense_mlp[i] as HF's Qwen3MoeDecoderLayer decides it.
std::vector<bool> dense_layers(const ConfigReader& c, int64_t num_layers, int64_t num_experts) {
  const int64_t step = c.get<int64_t>("decoder_sparse_step", 1);
  config_require(step > 0, c.where(), "decoder_sparse_step must be positive, found " + str(step));
  std::vector<int64_t> mlp_only = c.get<std::vector<int64_t>>("mlp_only_layers", {});
  std::vector<bool> out;
  for (int64_t i = 0; i < num_layers; ++i)
    out.push_back(std::find(mlp_only.begin(), mlp_only.end(), i) != mlp_only.end() || num_experts <= 0 ||
                  (i + 1) % step != 0);
  return out;
}

}  // namespace

qwen3_5::Config parse_config(const json& j, const std::string& where) {
  ConfigReader c(j, where);
  qwen3_5::Config k;
  std::string arch;
  if (c.has("architectures") && c.raw().at("architectures").is_array() && !c.raw().at("architectures").empty() &&
      c.raw().at("architectures")[0].is_string())
    arch = c.raw().at("architectures")[0].get<std::string>();
  k.family = "Qwen3";
  k.moe = !arch.empty() ? arch.find("Moe") != std::string::npos : c.get<std::string>("model_type", "") == "qwen3_moe";
  k.norm = ops::NormKind::kPlain;
  k.output_gate = false;
  k.tie_word_embeddings = c.get<bool>("tie_word_embeddings", false);
  refuse_sliding_window(c);

  k.vocab_size = c.get<int64_t>("vocab_size", 151936);
  k.hidden_size = c.get<int64_t>("hidden_size", k.moe ? 2048 : 4096);
  const int64_t num_layers = c.get<int64_t>("num_hidden_layers", k.moe ? 24 : 32);
  config_require(num_layers > 0, c.where(), "num_hidden_layers must be positive, found " + str(num_layers));
  k.layers.assign(num_layers, qwen3_5::LayerType::kFullAttention);
  k.eps = c.get<float>("rms_norm_eps", 1e-6f);
  k.num_heads = c.get<int64_t>("num_attention_heads", 32);
  k.num_kv_heads = c.get<int64_t>("num_key_value_heads", k.moe ? 4 : 32);
  config_require(k.num_heads > 0, c.where(), "num_attention_heads must be positive");
  k.head_dim = c.get<int64_t>("head_dim", k.hidden_size / k.num_heads);
  k.attention_bias = c.get<bool>("attention_bias", false);
  k.rope_theta = read_rope_theta(c);
  k.rotary_dim = k.head_dim;
  const std::string act = c.get<std::string>("hidden_act", "silu");
  config_require(act == "silu" || act == "swish", c.where(), "hidden_act \"" + act + "\" is not supported (expected silu)");
  k.intermediate_size = c.get<int64_t>("intermediate_size", k.moe ? 6144 : 22016);
  if (k.moe) {
    k.num_experts = c.get<int64_t>("num_experts", c.get<int64_t>("num_local_experts", 128));
    k.num_experts_per_tok = c.get<int64_t>("num_experts_per_tok", 8);
    k.moe_intermediate_size = c.get<int64_t>("moe_intermediate_size", 768);
    k.shared_expert_intermediate_size = 0;
    k.norm_topk_prob = c.get<bool>("norm_topk_prob", false);
    k.dense_mlp = dense_layers(c, num_layers, k.num_experts);
  }

  config_require(k.vocab_size > 0 && k.hidden_size > 0, c.where(), "vocab_size and hidden_size must be positive");
  config_require(k.eps > 0, c.where(), "rms_norm_eps must be positive");
  config_require(k.num_kv_heads > 0 && k.head_dim > 0 && k.head_dim % 2 == 0 && k.num_heads % k.num_kv_heads == 0,
                 c.where(),
                 "num_attention_heads (" + str(k.num_heads) + ") must be a positive multiple of num_key_value_heads (" +
                     str(k.num_kv_heads) + ") and head_dim (" + str(k.head_dim) + ") positive and even");
  config_require(k.intermediate_size > 0, c.where(), "intermediate_size must be positive");
  if (k.moe)
    config_require(k.num_experts > 0 && k.moe_intermediate_size > 0 && k.num_experts_per_tok > 0 &&
                       k.num_experts_per_tok <= k.num_experts,
                   c.where(),
                   "num_experts and moe_intermediate_size must be positive and num_experts_per_tok (" +
                       str(k.num_experts_per_tok) + ") in [1, num_experts = " + str(k.num_experts) + "]");
  return k;
}

}  // namespace hylora::qwen3
