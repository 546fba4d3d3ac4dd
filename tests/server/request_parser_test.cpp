// The chat endpoint hands the template the messages and tools exactly as the client sent them: keys in the client's
// order (transformers gets a Python dict from json.loads, and `tojson` prints it unsorted).
#include <gtest/gtest.h>

#include <string>

#include "server/json_body.h"
#include "server/request_parser.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace hylora::server {
namespace {

const std::string kModel = HYLORA_FIXTURES_DIR "/qwen3_5_causal_bf16/model";

TEST(ChatRequest, TemplateSeesToolsAndMessagesInTheClientsKeyOrder) {
  auto tokenizer = text::Tokenizer::from_directory(kModel);
  // Prints what transformers would: json.dumps of the dicts as they arrived.
  const text::ChatTemplate tmpl("{{ tools | tojson }}|{{ messages | tojson }}|{{ x | tojson }}", nlohmann::json::object(),
                                "test template");
  ModelContext ctx;
  ctx.base_name = "base";
  ctx.tokenizer = tokenizer.get();
  ctx.chat_template = &tmpl;
  ctx.limits.vocab_size = 1 << 20;
  ctx.resolve_model = [](const std::string&) { return std::string(); };
  const std::string body =
      R"({"model": "base", "tools": [{"type": "function", "function": {"name": "f", "description": "d", )"
      R"("parameters": {"type": "object", "properties": {"z": {"type": "string"}, "a": {"type": "number"}}}}}], )"
      R"("messages": [{"role": "user", "content": "hi", "name": "bob"}], "chat_template_kwargs": {"x": {"b": 1, "a": 2}}})";
  const ParsedRequest r = parse_request(parse_json_body(body, 1 << 20), Endpoint::kChat, ctx);
  const std::string expected =
      R"([{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object", )"
      R"("properties": {"z": {"type": "string"}, "a": {"type": "number"}}}}}]|)"
      R"([{"role": "user", "content": "hi", "name": "bob"}]|{"b": 1, "a": 2})";
  EXPECT_EQ(tokenizer->decode(r.prompt), expected);
  EXPECT_EQ(r.prompt, tokenizer->encode(expected));
}

}  // namespace
}  // namespace hylora::server
