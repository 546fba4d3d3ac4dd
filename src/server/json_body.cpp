#include "server/json_body.h"

#include "server/api_error.h"

namespace hylora::server {

namespace {
// Deepest bracket nesting outside strings; stops counting past `limit`.
std::size_t nesting_depth(const std::string& s, std::size_t limit) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) --depth;
  }
  return deepest;
}
}  // namespace

nlohmann::json parse_json_body(const std::string& body) {
  if (nesting_depth(body, kMaxJsonDepth) > kMaxJsonDepth)
    throw bad_request("request body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const std::exception& e) {
    throw bad_request(std::string("request body is not valid JSON: ") + e.what());
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
