#include "scheduler/generation_config.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace hylora::scheduler {

namespace {
bool read_ids(const std::filesystem::path& file, std::vector<int32_t>& out) {
  std::ifstream in(file);
  if (!in) return false;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail(file.string(), ": not valid JSON (", e.what(), ")");
  }
  const nlohmann::json* e = nullptr;
  if (j.is_object() && j.contains("eos_token_id")) e = &j["eos_token_id"];
  else if (j.is_object() && j.contains("text_config") && j["text_config"].is_object() &&
           j["text_config"].contains("eos_token_id"))
    e = &j["text_config"]["eos_token_id"];
  if (!e || e->is_null()) return false;
  auto add = [&](const nlohmann::json& v) {
    HYLORA_CHECK(v.is_number_integer(), file.string(), ": eos_token_id must be an integer or a list of them");
    out.push_back(v.get<int32_t>());
  };
  if (e->is_array())
    for (auto& v : *e) add(v);
  else
    add(*e);
  return true;
}
}  // namespace

std::vector<int32_t> read_eos_token_ids(const std::string& model_dir) {
  std::vector<int32_t> ids;
  const std::filesystem::path dir(model_dir);
  if (!read_ids(dir / "generation_config.json", ids)) read_ids(dir / "config.json", ids);
  return ids;
}

}  // namespace hylora::scheduler
