#pragma once
// Parsing of HTTP JSON bodies under the limits every outside JSON gets (core/json_limits.h): a nesting-depth limit
// (a deeply nested body must get a 400, not a stack overflow: issue 11) and a size limit.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

namespace hylora::server {

// The body as an ordered_json: keys keep the client's order, as Python's json.loads keeps it for transformers, so a
// chat template's `tojson` of messages/tools prints them as HF does (std::map would sort them).
// Throws ApiError(400) for invalid JSON, a body over `max_bytes` (the server's --max-body-bytes; the HTTP layer
// answers 413 before a larger body is ever held, this is the parser's own bound), nesting past
// json_limits::kMaxDepth, or a top level that is not an object.
nlohmann::ordered_json parse_json_body(const std::string& body, std::size_t max_bytes);

}  // namespace hylora::server
