#include "models/deepseek_v3_config.h"

#include <algorithm>
#include <cmath>

#include "ops/rope.h"

namespace hylora::deepseek_v3 {

namespace {

// A number that HF tests for truthiness (None and 0 both mean "absent").
double truthy_number(const ConfigReader& p, const std::string& key) {
  if (!p.has(key)) return 0.0;
  if (!p.raw().at(key).is_number()) fail(p.where(), ": field \"", key, "\" must be a number, found ", p.raw().at(key).dump());
  return p.get<double>(key);
}

// RotaryEmbeddingConfigMixin.convert_rope_params_to_dict + standardize_rope_params: a non-empty legacy
// `rope_scaling` wins over `rope_parameters`; `rope_type` falls back to the legacy `type`, then "default";
// `rope_theta` to the top-level field, then 10000; a top-level `original_max_position_embeddings` wins over the
// dict's, which falls back to `max_position_embeddings`.
RopeConfig parse_rope(const ConfigReader& c) {
  const json empty = json::object();
  const json* params = &empty;
  std::string key;
  for (const char* k : {"rope_scaling", "rope_parameters"}) {
    if (!c.has(k)) continue;
    const json& v = c.raw().at(k);
    if (!v.is_object()) fail(c.where(), ": field \"", k, "\" must be an object, found ", v.dump());
    if (v.empty()) continue;
    params = &v;
    key = k;
    break;
  }
  ConfigReader p(*params, c.where() + (key.empty() ? "" : " (" + key + ")"));
  RopeConfig r;
  r.type = p.has("rope_type") ? p.get<std::string>("rope_type") : p.get<std::string>("type", "default");
  r.theta = p.has("rope_theta") ? p.get<double>("rope_theta") : c.get<double>("rope_theta", 10000.0);
  config_require(r.theta > 0, p.where(), "rope_theta must be > 0, found " + std::to_string(r.theta));
  const double prf = p.has("partial_rotary_factor") ? p.get<double>("partial_rotary_factor")
                                                    : c.get<double>("partial_rotary_factor", 1.0);
  // HF would build cos/sin narrower than the rope part of q/k and fail to broadcast: refuse up front.
  config_require(prf == 1.0, p.where(), "partial_rotary_factor " + std::to_string(prf) +
                                     " is not supported by DeepSeek-V3 MLA (expected 1: all qk_rope_head_dim dims rotate)");
  if (r.type == "default") return r;
  if (r.type != "yarn")
    fail(p.where(), ": rope type \"", r.type, "\" is not supported for deepseek_v3 (supported: default, yarn)");
  if (!p.has("factor") || !p.raw().at("factor").is_number())
    fail(p.where(), ": yarn rope needs a numeric \"factor\"");
  r.factor = p.get<double>("factor");
  config_require(r.factor > 0, p.where(), "yarn factor must be > 0");
  r.original_max_position_embeddings =
      c.has("original_max_position_embeddings")
          ? c.get<double>("original_max_position_embeddings")
          : p.get<double>("original_max_position_embeddings", c.get<double>("max_position_embeddings", 4096.0));
  config_require(r.original_max_position_embeddings > 0, p.where(), "original_max_position_embeddings must be > 0");
  r.beta_fast = truthy_number(p, "beta_fast");
  if (r.beta_fast == 0.0) r.beta_fast = 32.0;  // HF: `get("beta_fast") or 32`
  r.beta_slow = truthy_number(p, "beta_slow");
  if (r.beta_slow == 0.0) r.beta_slow = 1.0;
  r.mscale = truthy_number(p, "mscale");
  r.mscale_all_dim = truthy_number(p, "mscale_all_dim");
  if (p.has("attention_factor")) {
    r.has_attention_factor = true;
    r.attention_factor = p.get<double>("attention_factor");
  }
  r.truncate = p.get<bool>("truncate", true);
  return r;
}

}  // namespace

Config parse_config(const json& j, const std::string& where) {
  ConfigReader c(j, where);
  Config k;
  k.vocab_size = c.get<int64_t>("vocab_size", 129280);
  k.hidden_size = c.get<int64_t>("hidden_size", 7168);
  k.num_layers = c.get<int64_t>("num_hidden_layers", 61);
  k.eps = c.get<float>("rms_norm_eps", 1e-6f);
  k.num_heads = c.get<int64_t>("num_attention_heads", 128);
  // q_lora_rank: absent -> HF default 1536; null -> plain q_proj.
  if (!j.contains("q_lora_rank")) k.q_lora_rank = 1536;
  else k.q_lora_rank = j.at("q_lora_rank").is_null() ? 0 : c.get<int64_t>("q_lora_rank");
  k.kv_lora_rank = c.get<int64_t>("kv_lora_rank", 512);
  k.qk_nope_head_dim = c.get<int64_t>("qk_nope_head_dim", 128);
  k.qk_rope_head_dim = c.get<int64_t>("qk_rope_head_dim", 64);
  k.v_head_dim = c.get<int64_t>("v_head_dim", 128);
  k.attention_bias = c.get<bool>("attention_bias", false);
  k.rope_interleave = c.get<bool>("rope_interleave", true);
  k.rope = parse_rope(c);
  k.intermediate_size = c.get<int64_t>("intermediate_size", 18432);
  k.moe_intermediate_size = c.get<int64_t>("moe_intermediate_size", 2048);
  k.n_routed_experts = c.get<int64_t>("n_routed_experts", 256);
  k.n_shared_experts = c.get<int64_t>("n_shared_experts", 1);
  k.shared_experts_intermediate_size =
      c.get<int64_t>("shared_experts_intermediate_size", k.moe_intermediate_size * k.n_shared_experts);
  k.num_experts_per_tok = c.get<int64_t>("num_experts_per_tok", 8);
  k.n_group = c.get<int64_t>("n_group", 8);
  k.topk_group = c.get<int64_t>("topk_group", 4);
  k.first_k_dense_replace = c.get<int64_t>("first_k_dense_replace", 3);
  k.norm_topk_prob = c.get<bool>("norm_topk_prob", true);
  k.routed_scaling_factor = c.get<float>("routed_scaling_factor", 2.5f);
  k.tie_word_embeddings = c.get<bool>("tie_word_embeddings", false);
  k.num_nextn_predict_layers = c.get<int64_t>("num_nextn_predict_layers", 1);

  const std::string act = c.get<std::string>("hidden_act", "silu");
  config_require(act == "silu", where, "hidden_act \"" + act + "\" is not supported (expected \"silu\")");
  const int64_t nkv = c.get<int64_t>("num_key_value_heads", k.num_heads);
  config_require(nkv == k.num_heads, where,
          "num_key_value_heads " + std::to_string(nkv) + " must equal num_attention_heads " +
              std::to_string(k.num_heads) + " (MLA expands the latent to one key/value per query head)");
  // transformers 5.17 makes layer i an MoE layer iff i >= first_k_dense_replace and ignores moe_layer_freq, while
  // DeepSeek's own code also requires i % moe_layer_freq == 0; the two only agree when it is 1.
  const int64_t freq = c.get<int64_t>("moe_layer_freq", 1);
  config_require(freq == 1, where,
          "moe_layer_freq " + std::to_string(freq) + " is not supported (expected 1; transformers ignores it)");

  auto positive = [&](int64_t v, const char* name) {
    config_require(v > 0, where, std::string(name) + " must be > 0, found " + std::to_string(v));
  };
  positive(k.vocab_size, "vocab_size");
  positive(k.hidden_size, "hidden_size");
  positive(k.num_layers, "num_hidden_layers");
  positive(k.num_heads, "num_attention_heads");
  config_require(k.q_lora_rank >= 0, where, "q_lora_rank must be > 0 or null");
  positive(k.kv_lora_rank, "kv_lora_rank");
  positive(k.qk_nope_head_dim, "qk_nope_head_dim");
  positive(k.qk_rope_head_dim, "qk_rope_head_dim");
  positive(k.v_head_dim, "v_head_dim");
  config_require(k.qk_rope_head_dim % 2 == 0, where,
          "qk_rope_head_dim must be even, found " + std::to_string(k.qk_rope_head_dim));
  positive(k.intermediate_size, "intermediate_size");
  config_require(k.first_k_dense_replace >= 0, where, "first_k_dense_replace must be >= 0");
  if (k.first_k_dense_replace < k.num_layers) {  // at least one MoE layer: the routing fields matter
    positive(k.moe_intermediate_size, "moe_intermediate_size");
    positive(k.n_routed_experts, "n_routed_experts");
    positive(k.n_shared_experts, "n_shared_experts");
    positive(k.shared_experts_intermediate_size, "shared_experts_intermediate_size");
    positive(k.n_group, "n_group");
    positive(k.num_experts_per_tok, "num_experts_per_tok");
    config_require(k.n_routed_experts % k.n_group == 0, where,
            "n_routed_experts " + std::to_string(k.n_routed_experts) + " must be a multiple of n_group " +
                std::to_string(k.n_group));
    const int64_t per_group = k.n_routed_experts / k.n_group;
    config_require(per_group >= 2, where,
            "each expert group needs at least 2 experts (group score = sum of the top 2), found n_routed_experts " +
                std::to_string(k.n_routed_experts) + " / n_group " + std::to_string(k.n_group));
    config_require(k.topk_group >= 1 && k.topk_group <= k.n_group, where,
            "topk_group " + std::to_string(k.topk_group) + " must be in [1, n_group " + std::to_string(k.n_group) +
                "]");
    config_require(k.num_experts_per_tok <= k.topk_group * per_group, where,
            "num_experts_per_tok " + std::to_string(k.num_experts_per_tok) + " exceeds the " +
                std::to_string(k.topk_group * per_group) + " experts of the topk_group best groups");
  }
  return k;
}

double yarn_get_mscale(double scale, double m) {
  if (scale <= 1.0) return 1.0;
  return 0.1 * m * std::log(scale) + 1.0;
}

double softmax_scale(const Config& c) {
  double s = std::pow(static_cast<double>(c.qk_head_dim()), -0.5);
  if (c.rope.type != "default" && c.rope.mscale_all_dim != 0.0) {
    const double m = yarn_get_mscale(c.rope.factor, c.rope.mscale_all_dim);
    s = s * m * m;
  }
  return s;
}

// hf:modeling_rope_utils.py::_compute_yarn_parameters, step by step in the same precision (python doubles for the
// scalars, float32 for the tensors).
RopeTables rope_tables(const RopeConfig& r, int64_t dim) {
  RopeTables t;
  if (r.type == "default") {
    t.inv_freq = ops::rope_inv_freq(dim, r.theta);
    return t;
  }
  if (r.has_attention_factor) t.attention_scaling = static_cast<float>(r.attention_factor);
  else if (r.mscale != 0.0 && r.mscale_all_dim != 0.0)
    t.attention_scaling = static_cast<float>(yarn_get_mscale(r.factor, r.mscale) /
                                             yarn_get_mscale(r.factor, r.mscale_all_dim));
  else
    t.attention_scaling = static_cast<float>(yarn_get_mscale(r.factor, 1.0));

  const double kPi = 3.14159265358979323846;
  auto correction_dim = [&](double rotations) {
    return (dim * std::log(r.original_max_position_embeddings / (rotations * 2 * kPi))) / (2 * std::log(r.theta));
  };
  double low = correction_dim(r.beta_fast), high = correction_dim(r.beta_slow);
  if (r.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // HF: prevent the singularity

  const int64_t half = dim / 2;
  const float base = static_cast<float>(r.theta), factor = static_cast<float>(r.factor);
  const float lowf = static_cast<float>(low), span = static_cast<float>(high - low);
  t.inv_freq.resize(half);
  for (int64_t i = 0; i < half; ++i) {
    const float pos_freq = std::pow(base, static_cast<float>(2 * i) / static_cast<float>(dim));
    const float extrapolation = 1.0f / pos_freq;
    const float interpolation = 1.0f / (factor * pos_freq);
    const float ramp = std::clamp((static_cast<float>(i) - lowf) / span, 0.0f, 1.0f);
    const float extrapolation_factor = 1.0f - ramp;
    t.inv_freq[i] = interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
  }
  return t;
}

}  // namespace hylora::deepseek_v3
