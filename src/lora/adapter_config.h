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
  // Module selection (PEFT 0.21 check_target_module_exists): a regex string (fullmatch) or a list of names
  // (exact or dotted suffix), exclude_modules likewise, and layers_to_transform / layers_pattern for list entries.
  bool target_modules_set = false;      // false when null/absent (then every stored module is accepted)
  bool target_modules_is_regex = false;
  std::string target_modules_regex;     // "all-linear" is PEFT's every-linear-but-the-output-layer
  std::vector<std::string> target_modules;
  bool exclude_modules_is_regex = false;
  std::string exclude_modules_regex;
  std::vector<std::string> exclude_modules;
  std::vector<int64_t> layers_to_transform;  // empty = every layer
  std::vector<std::string> layers_pattern;

  // PEFT's rank / alpha / scaling of the module (or parameter) at `key`, e.g. "model.layers.3.self_attn.q_proj" or
  // "model.layers.0.mlp.experts.gate_up_proj". `from_pattern` says which rank_pattern key applied ("" = r).
  int64_t rank_for(const std::string& key, std::string* from_pattern = nullptr) const;
  double alpha_for(const std::string& key) const;
  double scaling_for(const std::string& key) const;
  // True when `param_path` ("<module>.<param>") is named by target_parameters (exact or dotted suffix).
  bool targets_parameter(const std::string& param_path) const;
  // "" when PEFT would put a LoRA layer on `module` (stored path without "base_model.model."), else why not: an
  // adapter whose weights are for modules its own config does not select is refused, not half-loaded.
  std::string why_not_selected(const std::string& module) const;
};

// Reads and validates `<dir>/adapter_config.json`; refusals name the adapter, the field and what was found.
AdapterConfig read_adapter_config(const std::string& adapter, const std::string& dir);

// PEFT's get_pattern_key rule: re.match(rf"(.*\.)?({pattern})$", key).
bool peft_pattern_matches(const std::string& pattern, const std::string& key);

}  // namespace hylora::lora
