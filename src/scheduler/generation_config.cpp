#include "scheduler/generation_config.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_limits.h"

namespace hylora::scheduler {

namespace {
bool read_ids(const std::filesystem::path& file, std::vector<int32_t>& out) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return false;
  // A model directory is outside data: the same size and depth limits as config.json (issue 11).
  const auto j = read_json_file_bounded<nlohmann::json>(file.string(), json_limits::kConfig);
  const nlohmann::json* e = nullptr;
  if (j.is_object() && j.contains("eos_token_id")) e = &j.at("eos_token_id");
  else if (j.is_object() && j.contains("text_config") && j.at("text_config").is_object() &&
           j.at("text_config").contains("eos_token_id"))
    e = &j.at("text_config").at("eos_token_id");
  if (!e || e->is_null()) return false;
  auto add = [&](const nlohmann::json& v) {
    // Checked as the exact JSON integer: get<int32_t>() would wrap 4294967296 to 0 and end every request there.
    int64_t id = 0;
    HYLORA_CHECK(json_int_in_range(v, 0, INT32_MAX, id), file.string(),
                 ": eos_token_id must be an integer in [0, 2^31-1] or a list of them, found ", v.dump());
    out.push_back(static_cast<int32_t>(id));
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
