// One HTTP request body, as `hylora serve` handles it before anything is scheduled: the bounded body parse, then the
// request parser of each generation endpoint (field types and ranges, token ids, stop strings, the chat template and
// the tokenizer on the bundled Qwen3.5 model). A refusal must be an hylora::Error (the handler's 4xx); any other
// exception escaping would be a 500, and fails the harness like a crash.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/error.h"
#include "server/api_error.h"
#include "server/json_body.h"
#include "server/request_parser.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace {
using namespace hylora;

const server::ModelContext& model_context() {
  static const std::string dir = HYLORA_FIXTURES_DIR "/qwen3_5_causal_bf16/model";
  static const auto tokenizer = text::Tokenizer::from_directory(dir);
  static const auto chat_template = text::ChatTemplate::from_directory(dir);
  static const server::ModelContext ctx = [] {
    server::ModelContext c;
    c.base_name = "base";
    c.tokenizer = tokenizer.get();
    c.chat_template = chat_template.get();
    c.limits.max_prompt_tokens = 4096;  // below the fixture's context, as `hylora serve --max-prompt-tokens` would
    c.limits.vocab_size = 512;
    c.resolve_model = [](const std::string& m) -> std::string {
      if (m == "base") return "";
      if (m == "base:a" || m == "a") return "a";
      throw server::ApiError(404, "not_found_error", "no model " + m);
    };
    return c;
  }();
  return ctx;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const server::ModelContext& ctx = model_context();
  nlohmann::ordered_json body;
  try {
    body = server::parse_json_body(std::string(reinterpret_cast<const char*>(data), size), 1u << 20);
  } catch (const Error&) {
    return 0;
  }
  for (auto ep : {server::Endpoint::kCompletions, server::Endpoint::kChat, server::Endpoint::kGenerate}) {
    try {
      (void)server::parse_request(body, ep, ctx);
    } catch (const Error&) {
    }
  }
  return 0;
}
