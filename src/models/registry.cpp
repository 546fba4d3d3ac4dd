// Maps config.json's `architectures` / `model_type` onto the model files.
#include <filesystem>
#include <algorithm>
#include <functional>

#include "io/config.h"
#include "models/model.h"
#include "models/model_factories.h"

namespace hylora {

namespace {
struct Entry {
  std::vector<std::string> architectures;
  std::vector<std::string> model_types;
  std::function<std::unique_ptr<Model>(const WeightOrigin&, const json&, const std::string&)> make;
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> e = {
      {{"Qwen3_5ForCausalLM", "Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForCausalLM",
        "Qwen3_5MoeForConditionalGeneration"},
       {"qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text"},
       make_qwen3_5},
      {{"Qwen3ForCausalLM", "Qwen3MoeForCausalLM"}, {"qwen3", "qwen3_moe"}, make_qwen3},
      {{"NemotronHForCausalLM"}, {"nemotron_h"}, make_nemotron_h},
      {{"DeepseekV3ForCausalLM"}, {"deepseek_v3", "kimi_k2"}, make_deepseek_v3},
  };
  return e;
}
}  // namespace

std::string supported_architectures() {
  std::string s;
  for (auto& e : entries())
    for (auto& a : e.architectures) s += (s.empty() ? "" : ", ") + a;
  s += " (model_type ";
  bool first = true;
  for (auto& e : entries())
    for (auto& m : e.model_types) {
      s += (first ? "" : ", ") + m;
      first = false;
    }
  return s + ")";
}

std::unique_ptr<Model> load_model(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) fail("model directory ", dir, " does not exist");
  std::string path = (std::filesystem::path(dir) / "config.json").string();
  return make_model(read_json_file(path), path, WeightOrigin::checkpoint(dir));
}

std::unique_ptr<Model> make_model(const json& cfg, const std::string& path, const WeightOrigin& origin) {
  if (!cfg.is_object()) fail(path, ": expected a JSON object");
  std::string arch;
  if (cfg.contains("architectures") && cfg["architectures"].is_array() && !cfg["architectures"].empty() &&
      cfg["architectures"][0].is_string())
    arch = cfg["architectures"][0].get<std::string>();
  std::string model_type = cfg.contains("model_type") && cfg["model_type"].is_string()
                               ? cfg["model_type"].get<std::string>()
                               : "";
  for (auto& e : entries()) {
    bool by_arch = !arch.empty() && std::find(e.architectures.begin(), e.architectures.end(), arch) !=
                                        e.architectures.end();
    bool by_type = std::find(e.model_types.begin(), e.model_types.end(), model_type) != e.model_types.end();
    if (!by_arch && !(arch.empty() && by_type)) continue;
    auto model = e.make(origin, cfg, path);
    // Vision-language configs keep the text model's fields under text_config.
    const json& text = cfg.contains("text_config") && cfg["text_config"].is_object() ? cfg["text_config"] : cfg;
    for (const json* c : std::initializer_list<const json*>{&text, &cfg})
      if (c->contains("max_position_embeddings") && (*c)["max_position_embeddings"].is_number_integer()) {
        model->set_max_position_embeddings(std::max<int64_t>(0, (*c)["max_position_embeddings"].get<int64_t>()));
        break;
      }
    return model;
  }
  fail(path, ": unsupported architecture \"", arch, "\" (model_type \"", model_type,
       "\"); supported: ", supported_architectures());
}

}  // namespace hylora
