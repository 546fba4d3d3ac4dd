// The bundled demo tokenizer (tests/fixtures/tokenizer_tiny, trained with HF `tokenizers` on the GPU machine by
// tools/fixtures) against the ids and chat renderings HF itself produced there: encodings.jsonl holds
// {"text", "ids"} from tokenizer.encode(add_special_tokens=False); chat.jsonl holds apply_chat_template output.
#include <gtest/gtest.h>

#include "test_support.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace {
const std::string kTiny = std::string(HYLORA_TEXT_TEST_DIR) + "/../fixtures/tokenizer_tiny";

std::vector<nlohmann::json> lines_of(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(hylora::text::testing::read_file(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}
}  // namespace

TEST(TinyTokenizerHf, EncodeMatchesHfTokenizersAndDecodeRoundTrips) {
  auto tok = hylora::text::Tokenizer::from_directory(kTiny);
  auto cases = lines_of(kTiny + "/encodings.jsonl");
  ASSERT_GE(cases.size(), 20u);
  for (auto& c : cases) {
    auto text = c["text"].get<std::string>();
    auto want = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(text), want) << "text: " << text;
    // Decoding gives the (NFC-normalised) text back, which encodes to the same ids.
    EXPECT_EQ(tok->encode(tok->decode(want)), want) << "text: " << text;
  }
}

TEST(TinyTokenizerHf, ChatTemplateMatchesApplyChatTemplate) {
  auto tok = hylora::text::Tokenizer::from_directory(kTiny);
  auto tmpl = hylora::text::ChatTemplate::from_directory(kTiny);
  auto cases = lines_of(kTiny + "/chat.jsonl");
  ASSERT_GE(cases.size(), 2u);
  for (auto& c : cases) {
    nlohmann::ordered_json req = nlohmann::ordered_json::parse(c.dump());
    req.erase("text");
    req.erase("ids");
    std::string text = tmpl->render(req);
    EXPECT_EQ(text, c["text"].get<std::string>());
    ASSERT_TRUE(c.contains("ids"));
    EXPECT_EQ(tok->encode(text), c["ids"].get<std::vector<int32_t>>());
  }
}

TEST(TinyTokenizerHf, DemoModelShipsTheSameTokenizer) {
  using hylora::text::testing::read_file;
  std::string model_dir = std::string(HYLORA_TEXT_TEST_DIR) + "/../fixtures/qwen3_5_causal_bf16/model";
  EXPECT_EQ(read_file(model_dir + "/tokenizer.json"), read_file(kTiny + "/tokenizer.json"));
}
