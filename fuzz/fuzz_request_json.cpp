// Request JSON: one `hylora score` line (parse_score_request) and one tokenize/chat-template line (bounded parse
// after UTF-8 repair, then the template's value conversion), and the JSONL output of whatever came back.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cli/score_request.h"
#include "core/json_limits.h"
#include "text/jinja/value.h"
#include "text/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto r = hylora::cli::parse_score_request(line, 1, error);
  nlohmann::json out{{"id", r.id}, {"error", error}};
  (void)out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  try {
    auto j = hylora::parse_json_bounded<nlohmann::ordered_json>(hylora::text::to_valid_utf8(line),
                                                                hylora::json_limits::kRequest, "request");
    auto v = hylora::text::jinja::Value::from_json(j);
    (void)v.str();
    (void)v.to_json(2);
    (void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const hylora::Error&) {
  }
  return 0;
}
