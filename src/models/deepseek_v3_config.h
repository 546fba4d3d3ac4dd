#pragma once
// DeepSeek-V3 / Kimi-K2 config.json (model_type deepseek_v3 / kimi_k2, DeepseekV3ForCausalLM), read the way
// transformers 5.17 DeepseekV3Config + RotaryEmbeddingConfigMixin read it, and the rotary tables derived from it
// (default or YaRN inverse frequencies, the cos/sin attention scaling, and the softmax scale with the
// mscale_all_dim adjustment of hf:models/deepseek_v3/modeling_deepseek_v3.py::yarn_apply_mscale).
#include <string>
#include <vector>

#include "io/config.h"

namespace hylora::deepseek_v3 {

struct RopeConfig {
  std::string type = "default";  // "default" or "yarn"
  double theta = 10000.0;
  // YaRN only (rope_parameters keys).
  double factor = 1.0;
  double original_max_position_embeddings = 4096;
  double beta_fast = 32.0, beta_slow = 1.0;
  double mscale = 0.0, mscale_all_dim = 0.0;  // 0 = absent (HF tests them for truthiness)
  bool has_attention_factor = false;
  double attention_factor = 1.0;
  bool truncate = true;
};

struct Config {
  int64_t vocab_size = 0, hidden_size = 0, num_layers = 0;  // V, H
  float eps = 1e-6f;                                         // rms_norm_eps: layer norms and the final norm
  // MLA.
  int64_t num_heads = 128;         // nH (num_key_value_heads must equal it: HF's kv_b_proj makes nH KV heads)
  int64_t q_lora_rank = 1536;      // 0 = null: plain q_proj
  int64_t kv_lora_rank = 512;      // Ckv
  int64_t qk_nope_head_dim = 128;  // Dn
  int64_t qk_rope_head_dim = 64;   // Dr
  int64_t v_head_dim = 128;        // Dv
  bool attention_bias = false;     // bias on q_a_proj, kv_a_proj_with_mqa, o_proj
  bool rope_interleave = true;
  RopeConfig rope;
  // MLP / MoE.
  int64_t intermediate_size = 18432;     // dense layers
  int64_t moe_intermediate_size = 2048;  // I per routed expert; shared experts are I · n_shared_experts wide
  int64_t n_routed_experts = 256, n_shared_experts = 1, num_experts_per_tok = 8;
  // Is, the shared experts' width: moe_intermediate_size · n_shared_experts in every published config. Not an HF
  // field: a rank's per-rank config (dist::local_config, docs/multi_gpu.md §6.1) sets
  // "shared_experts_intermediate_size" to its share, because under --ep the routed experts stay whole (so
  // moe_intermediate_size does) while the shared experts are split over every rank.
  int64_t shared_experts_intermediate_size = 2048;
  int64_t n_group = 8, topk_group = 4;
  int64_t first_k_dense_replace = 3;  // layers [0, k) dense, the rest MoE
  bool norm_topk_prob = true;
  float routed_scaling_factor = 2.5f;
  bool tie_word_embeddings = false;
  int64_t num_nextn_predict_layers = 0;  // MTP layers stored after the last layer (not served)

  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }  // Dqk = Dn + Dr
  int64_t q_width() const { return num_heads * qk_head_dim(); }
  bool is_moe_layer(int64_t i) const { return i >= first_k_dense_replace; }
};

// Parses and validates; errors name `where` (the config path) and the field.
Config parse_config(const json& j, const std::string& where);

// The rotary tables of one config.
struct RopeTables {
  std::vector<float> inv_freq;  // [Dr/2], float32 as HF computes it
  float attention_scaling = 1.0f;  // multiplies cos and sin (YaRN attention_factor)
};
RopeTables rope_tables(const RopeConfig& r, int64_t rot_dim);

// YaRN's get_mscale: 1 for scale <= 1, else 0.1 · m · ln(scale) + 1.
double yarn_get_mscale(double scale, double m);

// Softmax scale Dqk^-0.5, times yarn_get_mscale(factor, mscale_all_dim)² when the rope type is not "default" and
// mscale_all_dim is set (non-zero).
double softmax_scale(const Config& c);

}  // namespace hylora::deepseek_v3
