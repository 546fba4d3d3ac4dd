#include "text/jsonl_loop.h"

#include <cstdio>
#include <iostream>

#include "text/utf8.h"

namespace hylora::text {

int run_jsonl_loop(const std::string& command,
                   const std::function<nlohmann::ordered_json(const nlohmann::ordered_json&)>& handle) {
  std::ios::sync_with_stdio(false);
  std::string line;
  long line_no = 0;
  int rc = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::ordered_json result;
    try {
      // Invalid UTF-8 bytes become U+FFFD first (Python errors="replace"), as HF only receives decoded text.
      result = handle(nlohmann::ordered_json::parse(to_valid_utf8(line)));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "hylora %s: line %ld: %s\n", command.c_str(), line_no, e.what());
      result = nlohmann::ordered_json{{"error", e.what()}};
      rc = 1;
    }
    std::cout << result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  std::cout.flush();
  return rc;
}

}  // namespace hylora::text
