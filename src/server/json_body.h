#pragma once
// Parsing of HTTP JSON bodies with a nesting-depth limit (a deeply nested body must get a 400, not a stack
// overflow: issue 11). TODO(issue 11): replace the local depth scan with the depth/size-limited JSON helper that
// branch `hostile` adds under src/io once it lands.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

namespace hylora::server {

inline constexpr std::size_t kMaxJsonDepth = 64;

// Throws ApiError(400) for invalid JSON, nesting past kMaxJsonDepth or a non-object top level.
nlohmann::json parse_json_body(const std::string& body);

}  // namespace hylora::server
