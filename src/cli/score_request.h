#pragma once
// One `hylora score` request line -> ScoreRequest (also the request-JSON fuzz target's entry point).
#include <cstdint>
#include <string>

#include "core/json_limits.h"
#include "engine/scorer.h"

namespace hylora::cli {

// Parses one request line under the request JSON limits. On failure returns a request with an id ("line N" when
// none can be read) and sets `error` (valid UTF-8, one line). Throws nothing for any input.
ScoreRequest parse_score_request(const std::string& line, int64_t line_no, std::string& error,
                                 const JsonLimits& limits = json_limits::kRequest);

}  // namespace hylora::cli
