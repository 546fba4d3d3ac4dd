#pragma once
// The line loop shared by the text commands: read JSONL from stdin, answer each object with one line.
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace hylora::text {

// Calls `handle` for every non-blank line of stdin (parsed as JSON after lossy UTF-8 repair, keeping key
// order) and prints what it returns; a line whose parse or handler throws gets {"error": ...} and a message
// on stderr. Returns the process exit code (0, or 1 when a line failed).
int run_jsonl_loop(const std::string& command,
                   const std::function<nlohmann::ordered_json(const nlohmann::ordered_json&)>& handle);

}  // namespace hylora::text
