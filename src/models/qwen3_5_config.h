#pragma once
// Qwen3.5 config.json (models.md §1.1-1.2, §1.6, §1.9), read the way transformers 5.17 reads it: either the
// composite config (`model_type` qwen3_5 / qwen3_5_moe, text fields under `text_config`, a top-level
// `tie_word_embeddings`) or a flat text config (qwen3_5_text / qwen3_5_moe_text). Dense vs MoE follows the
// architecture name (…Moe…) or, without one, the model_type.
#include <string>
#include <vector>

#include "io/config.h"
#include "ops/elementwise.h"

namespace hylora::qwen3_5 {

enum class LayerType { kLinearAttention, kFullAttention };  // Gated DeltaNet / gated softmax attention

// Also describes plain Qwen3 / Qwen3-MoE (qwen3_config.h): every layer full attention, plain-weight RMSNorm, no
// output gate, full-width rope, optional dense layers inside an MoE model, no shared expert.
struct Config {
  std::string family = "Qwen3_5";  // architecture name prefix: Qwen3_5 or Qwen3
  bool moe = false;
  bool conditional_generation = false;  // the checkpoint class is …ForConditionalGeneration
  int64_t vocab_size = 0, hidden_size = 0;  // V, H
  std::vector<LayerType> layers;
  float eps = 1e-6f;  // rms_norm_eps: every RMSNorm (layer norms, q/k norms, GDN gated norm, final norm)
  bool tie_word_embeddings = false;  // decided by the checkpoint class's own config (§1.9)
  ops::NormKind norm = ops::NormKind::kOnePlus;  // RMSNorm1p (Qwen3.5) or plain weight (Qwen3)

  // Full attention: q_proj emits [query D | gate D] per head when output_gate (Qwen3.5), else [query D].
  int64_t num_heads = 16, num_kv_heads = 4, head_dim = 256;  // nH, nKV, D
  bool output_gate = true;
  bool attention_bias = false;
  int64_t rotary_dim = 64;  // int(D · partial_rotary_factor), even
  double rope_theta = 10000.0;

  // Gated DeltaNet.
  int64_t conv_kernel = 4, key_head_dim = 128, value_head_dim = 128, num_key_heads = 16, num_value_heads = 32;

  // Dense MLP (dense models only).
  int64_t intermediate_size = 12288;
  // MoE (MoE models only).
  // shared_expert_intermediate_size 0 = no shared expert (Qwen3-MoE).
  int64_t num_experts = 256, num_experts_per_tok = 8, moe_intermediate_size = 512, shared_expert_intermediate_size = 512;
  bool norm_topk_prob = true;   // renormalise the top-k router weights (Qwen3-MoE's flag; Qwen3.5 always does)
  std::vector<bool> dense_mlp;  // MoE models: layers with a dense MLP of intermediate_size instead (Qwen3-MoE)

  bool moe_at(size_t layer) const { return moe && !(layer < dense_mlp.size() && dense_mlp[layer]); }

  int64_t key_dim() const { return num_key_heads * key_head_dim; }            // Hk·Dk
  int64_t value_dim() const { return num_value_heads * value_head_dim; }      // Hv·Dv
  int64_t conv_dim() const { return 2 * key_dim() + value_dim(); }            // [q | k | v]
};

// Parses and validates; errors name `where` (the config path, plus the text_config part) and the field.
Config parse_config(const json& j, const std::string& where);

}  // namespace hylora::qwen3_5
