#include "cli/score_request.h"

#include <nlohmann/json.hpp>

#include "core/json_limits.h"
#include "text/utf8.h"

namespace hylora::cli {

using json = nlohmann::json;

ScoreRequest parse_score_request(const std::string& line, int64_t line_no, std::string& error,
                                 const JsonLimits& limits) {
  ScoreRequest r;
  r.id = "line " + std::to_string(line_no);
  json j;
  try {
    j = parse_json_bounded<json>(line, limits, "line " + std::to_string(line_no));
  } catch (const std::exception& e) {
    error = text::to_valid_utf8(e.what());  // nlohmann quotes the offending bytes, which may not be UTF-8
    return r;
  }
  if (!j.is_object()) {
    error = "line " + std::to_string(line_no) + ": expected a JSON object";
    return r;
  }
  if (j.contains("id") && j["id"].is_string())
    r.id = j["id"].get<std::string>();
  else if (j.contains("id") && j["id"].is_number_integer())
    r.id = j["id"].dump();
  if (!j.contains("input_ids") || !j["input_ids"].is_array()) {
    error = "request " + r.id + ": field \"input_ids\" must be an array of token ids";
    return r;
  }
  r.input_ids.reserve(j["input_ids"].size());
  for (auto& t : j["input_ids"]) {
    int64_t v = 0;
    if (!t.is_number_integer()) {
      error = "request " + r.id + ": input_ids must hold integers, found a " + t.type_name();
      return r;
    }
    if (!json_int_in_range(t, INT32_MIN, INT32_MAX, v)) {
      error = "request " + r.id + ": token id " + t.dump() + " is out of range";
      return r;
    }
    r.input_ids.push_back(static_cast<int32_t>(v));
  }
  if (j.contains("lora") && !j["lora"].is_null()) {
    if (!j["lora"].is_string()) {
      error = "request " + r.id + ": field \"lora\" must be an adapter name or null";
      return r;
    }
    r.lora = j["lora"].get<std::string>();
  }
  return r;
}

}  // namespace hylora::cli
