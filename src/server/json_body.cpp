#include "server/json_body.h"

#include "core/json_limits.h"
#include "server/api_error.h"

namespace hylora::server {

nlohmann::ordered_json parse_json_body(const std::string& body, std::size_t max_bytes) {
  nlohmann::ordered_json j;
  try {
    j = parse_json_bounded<nlohmann::ordered_json>(body, JsonLimits{max_bytes, json_limits::kMaxDepth}, "request body");
  } catch (const Error& e) {
    throw bad_request(e.what());
  }
  if (!j.is_object()) throw bad_request("request body must be a JSON object");
  return j;
}

std::string error_body(int status, const std::string& type, const std::string& message, const std::string& param) {
  nlohmann::json e = {{"message", message}, {"type", type}, {"param", param.empty() ? nullptr : nlohmann::json(param)},
                      {"code", status}};
  return nlohmann::json{{"error", e}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace hylora::server
