#include "lora/adapter_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.h"

namespace hylora::lora {

namespace {
// ordered_json keeps the file's key order, which decides rank_pattern/alpha_pattern precedence.
using ojson = nlohmann::ordered_json;

bool truthy(const ojson& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get<std::string>().empty();
  if (v.is_array() || v.is_object()) return !v.empty();
  return true;
}

std::vector<std::string> string_list(const ojson& j, const std::string& field, const std::string& where) {
  std::vector<std::string> out;
  if (!j.contains(field) || j[field].is_null()) return out;
  const ojson& v = j[field];
  if (v.is_string()) return {v.get<std::string>()};
  if (!v.is_array()) fail(where, ": field \"", field, "\" must be a list of strings, found ", v.dump());
  for (auto& e : v) {
    if (!e.is_string()) fail(where, ": field \"", field, "\" must be a list of strings, found ", e.dump());
    out.push_back(e.get<std::string>());
  }
  return out;
}
}  // namespace

bool peft_pattern_matches(const std::string& pattern, const std::string& key) {
  try {
    return std::regex_match(key, std::regex("(.*\\.)?(" + pattern + ")"));
  } catch (const std::regex_error&) {
    // An invalid regex can only match literally in PEFT (re.match would raise); treat it as a plain suffix.
    return key == pattern || (key.size() > pattern.size() && key.compare(key.size() - pattern.size() - 1,
                                                                         std::string::npos, "." + pattern) == 0);
  }
}

int64_t AdapterConfig::rank_for(const std::string& key, std::string* from_pattern) const {
  for (auto& [p, v] : rank_pattern)
    if (peft_pattern_matches(p, key)) {
      if (from_pattern) *from_pattern = p;
      return v;
    }
  if (from_pattern) from_pattern->clear();
  return r;
}

double AdapterConfig::alpha_for(const std::string& key) const {
  for (auto& [p, v] : alpha_pattern)
    if (peft_pattern_matches(p, key)) return v;
  return lora_alpha;
}

double AdapterConfig::scaling_for(const std::string& key) const {
  const double r_k = static_cast<double>(rank_for(key));
  return use_rslora ? alpha_for(key) / std::sqrt(r_k) : alpha_for(key) / r_k;
}

bool AdapterConfig::targets_parameter(const std::string& param_path) const {
  for (auto& t : target_parameters)
    if (param_path == t ||
        (param_path.size() > t.size() &&
         param_path.compare(param_path.size() - t.size() - 1, std::string::npos, "." + t) == 0))
      return true;
  return false;
}

AdapterConfig read_adapter_config(const std::string& adapter, const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) fail("adapter \"", adapter, "\": directory ", dir, " does not exist");
  const std::string path = (fs::path(dir) / "adapter_config.json").string();
  if (!fs::exists(path))
    fail("adapter \"", adapter, "\": ", path, " is missing (a PEFT adapter directory holds adapter_config.json and "
         "adapter_model.safetensors)");
  ojson j;
  try {
    std::ifstream in(path);
    j = ojson::parse(in);
  } catch (const std::exception& e) {
    fail("adapter \"", adapter, "\": ", path, " is not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail("adapter \"", adapter, "\": ", path, ": expected a JSON object");
  const std::string where = "adapter \"" + adapter + "\": " + path;

  AdapterConfig c;
  c.adapter = adapter;
  c.path = path;
  if (j.contains("peft_type") && !j["peft_type"].is_null()) {
    std::string t = j["peft_type"].is_string() ? j["peft_type"].get<std::string>() : j["peft_type"].dump();
    if (t != "LORA") fail(where, ": peft_type is \"", t, "\"; only \"LORA\" adapters are supported");
  }
  // Fields whose math differs from plain LoRA: refused rather than served wrong (lora.md §6).
  const std::pair<const char*, const char*> refused[] = {
      {"use_dora", "DoRA (use_dora) is not supported"},
      {"use_qalora", "QA-LoRA (use_qalora) is not supported"},
      {"lora_bias", "lora_bias (a bias on lora_B) is not supported"},
      {"use_bdlora", "the LoRA variant use_bdlora is not supported"},
      {"velora_config", "the LoRA variant velora_config is not supported"},
      {"kasa_config", "the LoRA variant kasa_config is not supported"},
      {"arrow_config", "the LoRA variant arrow_config is not supported"},
      {"monteclora_config", "the LoRA variant monteclora_config is not supported"},
      {"alora_invocation_tokens", "activated LoRA (alora_invocation_tokens) is not supported"},
      {"trainable_token_indices", "added/trainable tokens (trainable_token_indices) are not supported"},
      {"layer_replication", "layer_replication is not supported"},
  };
  for (auto& [field, why] : refused)
    if (j.contains(field) && truthy(j[field]))
      fail(where, ": ", why, " (field \"", field, "\" is ", j[field].dump(), "; expected false/null)");

  auto number = [&](const char* field, double fallback) {
    if (!j.contains(field) || j[field].is_null()) return fallback;
    if (!j[field].is_number()) fail(where, ": field \"", field, "\" must be a number, found ", j[field].dump());
    return j[field].get<double>();
  };
  const double r = number("r", 8);
  if (r < 1 || r != std::floor(r)) fail(where, ": field \"r\" must be a positive integer, found ", j["r"].dump());
  c.r = static_cast<int64_t>(r);
  c.lora_alpha = number("lora_alpha", 8);
  if (j.contains("use_rslora") && !j["use_rslora"].is_null()) {
    if (!j["use_rslora"].is_boolean()) fail(where, ": field \"use_rslora\" must be true/false");
    c.use_rslora = j["use_rslora"].get<bool>();
  }
  for (const char* field : {"rank_pattern", "alpha_pattern"}) {
    if (!j.contains(field) || j[field].is_null()) continue;
    if (!j[field].is_object()) fail(where, ": field \"", field, "\" must be an object, found ", j[field].dump());
    for (auto& [k, v] : j[field].items()) {
      if (!v.is_number())
        fail(where, ": ", field, "[\"", k, "\"] must be a number, found ", v.dump());
      if (std::string(field) == "rank_pattern") {
        const double rv = v.get<double>();
        if (rv < 1 || rv != std::floor(rv))
          fail(where, ": rank_pattern[\"", k, "\"] must be a positive integer, found ", v.dump());
        c.rank_pattern.emplace_back(k, static_cast<int64_t>(rv));
      } else {
        c.alpha_pattern.emplace_back(k, v.get<double>());
      }
    }
  }
  c.target_parameters = string_list(j, "target_parameters", where);
  c.modules_to_save = string_list(j, "modules_to_save", where);
  return c;
}

}  // namespace hylora::lora
