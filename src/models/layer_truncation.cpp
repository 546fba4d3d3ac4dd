#include "models/layer_truncation.h"

#include <algorithm>
#include <map>

namespace hylora {

namespace {

std::string model_type(const json& c) {
  return c.contains("model_type") && c["model_type"].is_string() ? c["model_type"].get<std::string>() : "";
}

// Where a family keeps its layer fields: vision-language Qwen3.5 configs nest the text model under text_config.
bool is_qwen3_5(const std::string& t) { return t.rfind("qwen3_5", 0) == 0; }
json& text_of(json& c) { return c.contains("text_config") && c["text_config"].is_object() ? c["text_config"] : c; }
const json& text_of(const json& c) {
  return c.contains("text_config") && c["text_config"].is_object() ? c["text_config"] : c;
}

int64_t int_field(const json& c, const char* key, const std::string& where) {
  if (!c.contains(key) || !c[key].is_number_integer()) fail(where, ": field \"", key, "\" (an integer) is needed to truncate layers");
  return c[key].get<int64_t>();
}

// Nemotron-H's per-layer letters: M = Mamba2, E = MoE, * = attention, - = MLP.
std::vector<std::string> nemotron_kinds(const json& c, const std::string& where) {
  for (const char* key : {"layers_block_type", "layer_types"})
    if (c.contains(key)) return c[key].get<std::vector<std::string>>();
  if (!c.contains("hybrid_override_pattern") || !c["hybrid_override_pattern"].is_string())
    fail(where, ": a Nemotron-H config needs hybrid_override_pattern (or layers_block_type) to truncate layers");
  std::vector<std::string> out;
  for (char ch : c["hybrid_override_pattern"].get<std::string>()) out.push_back(std::string(1, ch));
  return out;
}

bool is_deepseek(const std::string& t) { return t == "deepseek_v3" || t == "kimi_k2"; }

}  // namespace

std::vector<std::string> layer_kinds(const json& config, const std::string& where) {
  const std::string type = model_type(config);
  const json& t = text_of(config);
  if (type == "nemotron_h") return nemotron_kinds(t, where);  // its pattern, not num_hidden_layers, has the count
  const int64_t n = int_field(t, "num_hidden_layers", where);
  if (is_qwen3_5(type)) {
    if (t.contains("layer_types")) return t["layer_types"].get<std::vector<std::string>>();
    const int64_t interval = t.value("full_attention_interval", int64_t{4});
    std::vector<std::string> out;
    for (int64_t i = 0; i < n; ++i) out.push_back((i + 1) % interval == 0 ? "full_attention" : "linear_attention");
    return out;
  }
  if (is_deepseek(type)) {
    const int64_t first_dense = t.value("first_k_dense_replace", int64_t{0});
    const int64_t freq = t.value("moe_layer_freq", int64_t{1});
    if (freq != 1) fail(where, ": moe_layer_freq ", freq, " is not supported for --layers (only 1)");
    std::vector<std::string> out;
    for (int64_t i = 0; i < n; ++i) out.push_back(i < first_dense ? "dense" : "moe");
    return out;
  }
  fail(where, ": --layers supports the qwen3_5*, nemotron_h, deepseek_v3 and kimi_k2 families, not model_type \"",
       type, "\"");
}

std::vector<int64_t> select_representative_layers(const std::vector<std::string>& kinds, int64_t n) {
  const int64_t total = static_cast<int64_t>(kinds.size());
  HYLORA_CHECK(n >= 1 && n <= total, "--layers ", n, ": must be between 1 and the model's ", total, " layers");
  // Positions of each kind, kinds in order of first appearance.
  std::vector<std::string> order;
  std::map<std::string, std::vector<int64_t>> where;
  for (int64_t i = 0; i < total; ++i) {
    if (!where.count(kinds[i])) order.push_back(kinds[i]);
    where[kinds[i]].push_back(i);
  }
  // Largest-remainder apportionment of n over the kinds, then at least one of each kind while n allows (taken from
  // the kind with the most layers).
  std::map<std::string, int64_t> take;
  std::vector<std::pair<double, std::string>> remainders;
  int64_t given = 0;
  for (const std::string& k : order) {
    const double exact = static_cast<double>(n) * static_cast<double>(where[k].size()) / static_cast<double>(total);
    take[k] = static_cast<int64_t>(exact);
    given += take[k];
    remainders.push_back({exact - static_cast<double>(take[k]), k});
  }
  std::stable_sort(remainders.begin(), remainders.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t i = 0; given < n; ++i, ++given) ++take[remainders[i % remainders.size()].second];
  for (const std::string& k : order) {
    if (take[k] > 0) continue;
    auto richest = std::max_element(take.begin(), take.end(), [](auto& a, auto& b) { return a.second < b.second; });
    if (richest->second <= 1) break;  // n < number of kinds: nothing left to move
    --richest->second;
    take[k] = 1;
  }
  // Evenly spread within each kind: the j-th of c kept out of m sits at the middle of the j-th of c equal parts.
  std::vector<int64_t> kept;
  for (const std::string& k : order) {
    const auto& pos = where[k];
    const int64_t m = static_cast<int64_t>(pos.size()), c = take[k];
    for (int64_t j = 0; j < c; ++j) kept.push_back(pos[static_cast<size_t>((2 * j + 1) * m / (2 * c))]);
  }
  std::sort(kept.begin(), kept.end());
  return kept;
}

TruncatedConfig truncate_layers(const json& config, int64_t layers, const std::string& where) {
  TruncatedConfig out;
  const std::vector<std::string> kinds = layer_kinds(config, where);
  out.original_layers = static_cast<int64_t>(kinds.size());
  if (layers < 1 || layers > out.original_layers)
    fail("--layers ", layers, ": must be between 1 and the ", out.original_layers, " layers of ", where);
  out.kept = select_representative_layers(kinds, layers);
  for (int64_t i : out.kept) out.kinds.push_back(kinds[i]);
  out.config = config;
  json& t = text_of(out.config);
  const std::string type = model_type(config);
  t["num_hidden_layers"] = layers;
  if (is_qwen3_5(type)) {
    t["layer_types"] = out.kinds;
  } else if (type == "nemotron_h") {
    bool replaced = false;
    for (const char* key : {"layers_block_type", "layer_types"})
      if (t.contains(key)) {
        t[key] = out.kinds;
        replaced = true;
      }
    if (!replaced) {
      std::string pattern;
      for (const std::string& k : out.kinds) pattern += k;
      t["hybrid_override_pattern"] = pattern;
    }
  } else if (is_deepseek(type)) {
    t["first_k_dense_replace"] = std::count(out.kinds.begin(), out.kinds.end(), std::string("dense"));
  }
  return out;
}

std::string TruncatedConfig::describe() const {
  std::string s = std::to_string(kept.size()) + " of " + std::to_string(original_layers) + " layers:";
  for (size_t i = 0; i < kept.size(); ++i) s += (i ? ", " : " ") + std::to_string(kept[i]) + " " + kinds[i];
  return s;
}

}  // namespace hylora
