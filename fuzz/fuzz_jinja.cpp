// Chat templates: the input is a template source, lexed, parsed and rendered with a small chat (all limits on).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "text/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::json config = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
  static const nlohmann::ordered_json request = nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi \u00e9 there"},
                 {"role": "assistant", "content": "Hello.", "tool_calls": [{"function": {"name": "f",
                  "arguments": {"x": 1, "y": [1.5, null, true]}}}]},
                 {"role": "tool", "content": "42"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "add_generation_prompt": true, "enable_thinking": false})");
  const std::string source(reinterpret_cast<const char*>(data), size);
  try {
    hylora::text::ChatTemplate t(source, config, "fuzz.jinja");
    (void)t.render(request);
  } catch (const hylora::Error&) {
  }
  return 0;
}
