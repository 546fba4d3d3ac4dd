#include "lora/adapter_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.h"
#include "core/json_limits.h"

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

namespace {
bool listed(const std::vector<std::string>& names, const std::string& key) {
  for (auto& t : names)
    if (key == t || (key.size() > t.size() && key.compare(key.size() - t.size() - 1, std::string::npos, "." + t) == 0))
      return true;
  return false;
}
bool full_match(const std::string& pattern, const std::string& key) {
  try {
    return std::regex_match(key, std::regex(pattern));
  } catch (const std::regex_error&) {
    return key == pattern;
  }
}
std::string describe(const std::vector<std::string>& v) {
  std::string s = "[";
  for (auto& x : v) s += (s.size() > 1 ? ", \"" : "\"") + x + "\"";
  return s + "]";
}
}  // namespace

std::string AdapterConfig::why_not_selected(const std::string& key) const {
  if (exclude_modules_is_regex ? full_match(exclude_modules_regex, key) : listed(exclude_modules, key))
    return "module " + key + " is excluded by exclude_modules";
  if (!target_modules_set) return "";
  if (target_modules_is_regex) {
    if (target_modules_regex == "all-linear")
      return key == "lm_head" || key.ends_with(".lm_head") ? "all-linear does not select the output layer " + key : "";
    return full_match(target_modules_regex, key) ? ""
                                                 : "module " + key + " does not match target_modules \"" +
                                                       target_modules_regex + "\"";
  }
  if (std::find(target_modules.begin(), target_modules.end(), key) != target_modules.end()) return "";
  if (!listed(target_modules, key)) {
    // A target_parameters adapter stores its factors on the module that owns the parameter (…experts[.base_layer]).
    std::string owner = key;
    while (owner.ends_with(".base_layer")) owner.resize(owner.size() - 11);
    for (auto& t : target_parameters) {
      const auto dot = t.rfind('.');
      if (dot == std::string::npos || listed({t.substr(0, dot)}, owner)) return "";
    }
    return "module " + key + " is not named by target_modules " + describe(target_modules) +
           (target_parameters.empty() ? "" : " or target_parameters " + describe(target_parameters));
  }
  if (layers_to_transform.empty()) return "";
  std::smatch m;
  bool found = false;
  if (layers_pattern.empty()) {
    static const std::regex any_layer(R"(.*\.[^.]*\.(\d+)\..*)");
    found = std::regex_match(key, m, any_layer);
  } else {
    for (auto& p : layers_pattern) {
      try {
        if ((found = std::regex_match(key, m, std::regex(".*\\." + p + "\\.(\\d+)\\..*")))) break;
      } catch (const std::regex_error&) {
      }
    }
  }
  if (!found) return "module " + key + " has no layer index, so layers_to_transform does not select it";
  const std::string digits = m[1].str();
  const int64_t layer = digits.size() > 9 ? -1 : std::stoll(digits);
  if (std::find(layers_to_transform.begin(), layers_to_transform.end(), layer) == layers_to_transform.end())
    return "module " + key + " is in layer " + digits + ", which layers_to_transform does not list";
  return "";
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
    j = read_json_file_bounded<ojson>(path, json_limits::kConfig);
  } catch (const Error& e) {
    fail("adapter \"", adapter, "\": ", e.what());
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
    if (!j[field].is_number() || !std::isfinite(j[field].get<double>()))
      fail(where, ": field \"", field, "\" must be a finite number, found ", j[field].dump());
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
      if (!v.is_number() || !std::isfinite(v.get<double>()))
        fail(where, ": ", field, "[\"", k, "\"] must be a finite number, found ", v.dump());
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
  if (j.contains("target_modules") && !j["target_modules"].is_null()) {
    c.target_modules_set = true;
    if (j["target_modules"].is_string()) {
      c.target_modules_is_regex = true;
      c.target_modules_regex = j["target_modules"].get<std::string>();
    } else {
      c.target_modules = string_list(j, "target_modules", where);
    }
  }
  if (c.target_modules_set && !c.target_modules_is_regex && c.target_modules.empty() && c.target_parameters.empty())
    fail(where, ": target_modules is empty and target_parameters is not set: the adapter selects no module (PEFT "
         "refuses this config too)");
  if (j.contains("exclude_modules") && j["exclude_modules"].is_string()) {
    c.exclude_modules_is_regex = true;
    c.exclude_modules_regex = j["exclude_modules"].get<std::string>();
  } else {
    c.exclude_modules = string_list(j, "exclude_modules", where);
  }
  if (j.contains("layers_to_transform") && !j["layers_to_transform"].is_null()) {
    const ojson& v = j["layers_to_transform"];
    int64_t layer = 0;
    if (v.is_array()) {
      for (auto& e : v) {
        if (!json_int_in_range(e, 0, INT32_MAX, layer))
          fail(where, ": layers_to_transform must be a layer index or a list of them, found ", v.dump());
        c.layers_to_transform.push_back(layer);
      }
    } else if (json_int_in_range(v, 0, INT32_MAX, layer)) {
      c.layers_to_transform.push_back(layer);
    } else {
      fail(where, ": layers_to_transform must be a layer index or a list of them, found ", v.dump());
    }
  }
  c.layers_pattern = string_list(j, "layers_pattern", where);
  return c;
}

}  // namespace hylora::lora
