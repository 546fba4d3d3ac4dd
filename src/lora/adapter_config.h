#pragma once
// adapter_config.json of a PEFT LoRA adapter (models.md §4.1–4.2): the fields that change inference numbers, and the
// refusal of every field whose math hylora does not implement (DoRA, variants, lora_bias, added tokens, ...).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hylora::lora {

struct AdapterConfig {
  std::string adapter;  // adapter name (for messages)
  std::string path;     // the adapter_config.json path (for messages)
  int64_t r = 8;
  double lora_alpha = 8;
  bool use_rslora = false;
  // Patterns in the file's dict order: PEFT takes the first key that matches (models.md §4.2).
  std::vector<std::pair<std::string, int64_t>> rank_pattern;
  std::vector<std::pair<std::string, double>> alpha_pattern;
  std::vector<std::string> target_parameters;  // e.g. "mlp.experts.gate_up_proj", "mlp.gate.weight"
  std::vector<std::string> modules_to_save;

  // PEFT's rank / alpha / scaling of the module (or parameter) at `key`, e.g. "model.layers.3.self_attn.q_proj" or
  // "model.layers.0.mlp.experts.gate_up_proj". `from_pattern` says which rank_pattern key applied ("" = r).
  int64_t rank_for(const std::string& key, std::string* from_pattern = nullptr) const;
  double alpha_for(const std::string& key) const;
  double scaling_for(const std::string& key) const;
  // True when `param_path` ("<module>.<param>") is named by target_parameters (exact or dotted suffix).
  bool targets_parameter(const std::string& param_path) const;
};

// Reads and validates `<dir>/adapter_config.json`; refusals name the adapter, the field and what was found.
AdapterConfig read_adapter_config(const std::string& adapter, const std::string& dir);

// PEFT's get_pattern_key rule: re.match(rf"(.*\.)?({pattern})$", key).
bool peft_pattern_matches(const std::string& pattern, const std::string& key);

}  // namespace hylora::lora
