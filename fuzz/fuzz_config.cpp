// config.json through the bounded JSON reader and every model family's config parser.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/json_limits.h"
#include "models/deepseek_v3_config.h"
#include "models/nemotron_h_config.h"
#include "models/qwen3_5_config.h"
#include "models/qwen3_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hylora::json j;
  try {
    j = hylora::parse_json_bounded<hylora::json>(std::string_view(reinterpret_cast<const char*>(data), size),
                                                 hylora::json_limits::kConfig, "config.json");
  } catch (const hylora::Error&) {
    return 0;
  }
  auto run = [&](auto parse) {
    try {
      parse(j, "config.json");
    } catch (const hylora::Error&) {
    }
  };
  run(hylora::qwen3_5::parse_config);
  run(hylora::qwen3::parse_config);
  run(hylora::nemotron_h::parse_config);
  run(hylora::deepseek_v3::parse_config);
  return 0;
}
