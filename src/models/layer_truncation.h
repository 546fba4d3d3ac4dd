#pragma once
// Truncating a config.json to fewer layers, for benchmarking models that do not fit one device (performance.md:
// "bench them at reduced layer counts"). The kept layers are chosen so that the mix of layer kinds (GDN / attention,
// Mamba2 / MoE / attention / MLP, dense / MoE) stays in the original proportions — largest remainder, at least one
// layer of every kind when N allows — spread evenly over each kind's positions, and kept in their original order.
// The result is a valid config of the same family with N layers; `kept` says which original layers they were.
#include <cstdint>
#include <string>
#include <vector>

#include "io/config.h"

namespace hylora {

struct TruncatedConfig {
  json config;                     // the config with N layers (vision-language configs: text_config rewritten)
  std::vector<int64_t> kept;       // [N] original layer indices, ascending
  std::vector<std::string> kinds;  // [N] kind of each kept layer (e.g. "linear_attention", "M", "moe")
  int64_t original_layers = 0;

  // "8 of 32 layers: 0 linear_attention, 3 full_attention, ..." for reports.
  std::string describe() const;
};

// The layer kinds of `config`'s layers in order (for tests and reports); throws for an unsupported family.
std::vector<std::string> layer_kinds(const json& config, const std::string& where);

// Keeps `layers` (1 ≤ layers ≤ the config's count) of the config's layers; throws Error naming the family or the
// bound when it cannot.
TruncatedConfig truncate_layers(const json& config, int64_t layers, const std::string& where);

// Which of `kinds` to keep for `n` layers (indices ascending), as described above. Exposed for tests.
std::vector<int64_t> select_representative_layers(const std::vector<std::string>& kinds, int64_t n);

}  // namespace hylora
