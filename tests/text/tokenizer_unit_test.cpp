// Unit tests of the tokenizer parts on small hand-made tokenizer.json files: UTF-8 repair, the byte-level
// alphabet, BPE merge order, ignore_merges, unknown characters (unk_token, fuse_unk, byte_fallback, dropped),
// added-token flags, Split behaviours, and load-time errors for unsupported components.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "text/byte_level.h"
#include "text/regex.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

namespace hylora::text {
namespace {

using json = nlohmann::json;
const std::string kFFFD = "\xEF\xBF\xBD";

TEST(Utf8, ReplacesMaximalInvalidSubpartsLikePython) {
  EXPECT_EQ(to_valid_utf8("ok"), "ok");
  EXPECT_EQ(to_valid_utf8("a\x80" "b"), "a" + kFFFD + "b");
  EXPECT_EQ(to_valid_utf8("\xe4\xb8"), kFFFD);                        // truncated 3-byte sequence: one
  EXPECT_EQ(to_valid_utf8("\xc0\xaf"), kFFFD + kFFFD);                // overlong: two
  EXPECT_EQ(to_valid_utf8("\xed\xa0\x80"), kFFFD + kFFFD + kFFFD);    // surrogate: three
  EXPECT_EQ(to_valid_utf8("\xf0\x9f\x98" "x"), kFFFD + "x");          // truncated 4-byte: one
  EXPECT_EQ(to_valid_utf8("\xf5\xff"), kFFFD + kFFFD);
}

TEST(Utf8, FindsIncompleteTail) {
  EXPECT_EQ(incomplete_utf8_tail("abc"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("a\xe4\xb8"), 2u);
  EXPECT_EQ(incomplete_utf8_tail("a\xf0\x9f\x98"), 3u);
  EXPECT_EQ(incomplete_utf8_tail("a\xe4\xb8\xad"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("a\x80"), 0u);  // invalid, not incomplete: replaced, not held back
}

TEST(ByteLevel, RoundTripsEveryByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(symbols_to_bytes(bytes_to_symbols(all)), all);
  EXPECT_EQ(bytes_to_symbols(" "), "\xC4\xA0");  // 'Ġ'
  EXPECT_EQ(symbols_to_bytes("\xE4\xB8\xAD"), std::nullopt);
}

TEST(Regex, WhitespaceClassAgreesWithOniguruma) {
  Regex re("\\s+", false, "test");
  auto m = re.find_all("a\xC2\x85" "b");  // U+0085 NEXT LINE is \s in Oniguruma
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], std::make_pair(std::size_t{1}, std::size_t{3}));
  EXPECT_EQ(oniguruma_compatible("[^\\s\\p{L}]|\\S"), "[^\\s\\x{85}\\p{L}]|[^\\s\\x{85}]");
}

TEST(Regex, SplitPatternsOfTheMissionModelsCompileAndSplit) {
  // DeepSeek-V3's digit and CJK pre-splits and its main pattern, and a Llama-3-style pattern (Nemotron-H).
  Regex digits("\\p{N}{1,3}", false, "test");
  EXPECT_EQ(digits.find_all("a1234567").size(), 3u);
  Regex cjk("[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+", false, "test");
  EXPECT_EQ(cjk.find_all("ab\u4e2d\u6587cd\u3072\u3089").size(), 2u);
  Regex deepseek("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
                 false, "test");
  EXPECT_EQ(deepseek.find_all("Hello world.\n\n  x").size(), 5u);  // "Hello", " world", ".\n\n", " ", " x"
  Regex llama3("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
               false, "test");
  EXPECT_EQ(llama3.find_all("I'M 12345").size(), 5u);  // "I", "'M", " ", "123", "45"
}

// A tiny byte-level BPE over "a", "b", "c", "Ġ" with merges ab, abc (via ab+c), Ġa.
json tiny_tokenizer(json model_overrides = json::object(), json added = json::array(), json pre = nullptr) {
  json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"\xC4\xA0", 3}, {"ab", 4}, {"abc", 5}, {"\xC4\xA0" "a", 6}, {"bc", 7}};
  json model = {{"type", "BPE"}, {"vocab", vocab},
                {"merges", json::array({json::array({"a", "b"}), json::array({"b", "c"}), json::array({"ab", "c"}),
                                        json::array({"\xC4\xA0", "a"})})}};
  for (auto& [k, v] : model_overrides.items()) model[k] = v;
  if (pre.is_null())
    pre = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  return {{"model", model}, {"added_tokens", added}, {"normalizer", nullptr}, {"pre_tokenizer", pre},
          {"decoder", {{"type", "ByteLevel"}}}};
}

TEST(Bpe, MergesLowestRankFirst) {
  Tokenizer tok(tiny_tokenizer());
  EXPECT_EQ(tok.encode("abc"), (std::vector<int32_t>{5}));  // a+b (rank 0), then ab+c (rank 2)
  // With b+c ranked first, "bc" forms and "abc" is out of reach.
  Tokenizer bc_first(tiny_tokenizer({{"merges", json::array({"b c", "a b", "ab c"})}}));
  EXPECT_EQ(bc_first.encode("abc"), (std::vector<int32_t>{0, 7}));
  EXPECT_EQ(tok.encode("bc a"), (std::vector<int32_t>{7, 6}));
  EXPECT_EQ(tok.decode(std::vector<int32_t>{7, 6}), "bc a");
  // Equal pairs merge leftmost first: "aaa"-like runs via "b c b c" -> bc, bc.
  EXPECT_EQ(tok.encode("bcbc"), (std::vector<int32_t>{7, 7}));
}

TEST(Bpe, MergesStringFormatAndIgnoreMerges) {
  Tokenizer strings(tiny_tokenizer({{"merges", json::array({"a b", "ab c"})}}));
  EXPECT_EQ(strings.encode("abc"), (std::vector<int32_t>{5}));
  // "bc" is in the vocabulary but no merge leads to it from "b","c" first... with ignore_merges the whole
  // word is looked up directly.
  Tokenizer no_bc_merge(tiny_tokenizer({{"merges", json::array({"a b"})}}));
  EXPECT_EQ(no_bc_merge.encode("bc"), (std::vector<int32_t>{1, 2}));
  Tokenizer ignore(tiny_tokenizer({{"merges", json::array({"a b"})}, {"ignore_merges", true}}));
  EXPECT_EQ(ignore.encode("bc"), (std::vector<int32_t>{7}));
}

TEST(Bpe, UnknownCharacters) {
  auto pre = json{{"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}}, {"behavior", "Removed"}};
  // No unk_token: characters outside the vocabulary are dropped, as HF does.
  // The neighbours of a dropped character then merge as if it was not there.
  EXPECT_EQ(Tokenizer(tiny_tokenizer({}, json::array(), pre)).encode("axxb"), (std::vector<int32_t>{4}));
  json j = tiny_tokenizer({}, json::array(), pre);
  j["model"]["vocab"]["<unk>"] = 8;
  j["model"]["unk_token"] = "<unk>";
  EXPECT_EQ(Tokenizer(j).encode("axxb"), (std::vector<int32_t>{0, 8, 8, 1}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(Tokenizer(j).encode("axxb"), (std::vector<int32_t>{0, 8, 1}));
  j["model"]["byte_fallback"] = true;
  j["model"]["vocab"]["<0x78>"] = 9;
  EXPECT_EQ(Tokenizer(j).encode("axyb"), (std::vector<int32_t>{0, 9, 8, 1}));
}

TEST(AddedTokens, FlagsAndSpecialSkipping) {
  json added = json::array({
      {{"id", 10}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
      {{"id", 11}, {"content", "[L]"}, {"special", false}, {"lstrip", true}, {"normalized", false}},
      {{"id", 12}, {"content", "[R]"}, {"special", false}, {"rstrip", true}, {"normalized", false}},
      {{"id", 13}, {"content", "ab"}, {"special", false}, {"single_word", true}, {"normalized", false}},
      {{"id", 14}, {"content", "<s>x"}, {"special", false}, {"normalized", false}},
  });
  Tokenizer tok(tiny_tokenizer({}, added));
  EXPECT_EQ(tok.encode("a<s>b"), (std::vector<int32_t>{0, 10, 1}));
  EXPECT_EQ(tok.encode("<s>xa"), (std::vector<int32_t>{14, 0}));  // longest match wins
  EXPECT_EQ(tok.encode("a  [L]b"), (std::vector<int32_t>{0, 11, 1}));
  EXPECT_EQ(tok.encode("a[R]  b"), (std::vector<int32_t>{0, 12, 1}));
  EXPECT_EQ(tok.encode("ab c"), (std::vector<int32_t>{13, 3, 2}));
  EXPECT_EQ(tok.encode("cab"), (std::vector<int32_t>{2, 4}));  // not a single word: plain BPE
  EXPECT_EQ(tok.decode(std::vector<int32_t>{10, 0, 11}), "<s>a[L]");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{10, 0, 11}, true), "a[L]");
  // split_special_tokens (tokenizer_config.json): special tokens in text are ordinary text.
  Tokenizer split(tiny_tokenizer({}, added), /*split_special_tokens=*/true);
  auto ids = split.encode("a<s>b");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 10), 0);
  EXPECT_EQ(split.encode("<s>x"), (std::vector<int32_t>{14}));  // non-special added tokens still match
}

TEST(PreTokenizer, SplitBehaviours) {
  auto encode_words = [](const std::string& behavior, bool invert = false) {
    json pre = {{"type", "Sequence"},
                {"pretokenizers",
                 json::array({{{"type", "Split"}, {"pattern", {{"String", "b"}}}, {"behavior", behavior}, {"invert", invert}},
                              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
    return Tokenizer(tiny_tokenizer({}, json::array(), pre)).encode("abcab");
  };
  // Pieces: Isolated a|b|ca|b ; Removed a|ca ; MergedWithPrevious ab|cab ; MergedWithNext a|bca|b ;
  // Contiguous a|b|ca|b.
  EXPECT_EQ(encode_words("Isolated"), (std::vector<int32_t>{0, 1, 2, 0, 1}));
  EXPECT_EQ(encode_words("Removed"), (std::vector<int32_t>{0, 2, 0}));
  EXPECT_EQ(encode_words("MergedWithPrevious"), (std::vector<int32_t>{4, 2, 4}));
  EXPECT_EQ(encode_words("MergedWithNext"), (std::vector<int32_t>{0, 7, 0, 1}));
  EXPECT_EQ(encode_words("Contiguous"), (std::vector<int32_t>{0, 1, 2, 0, 1}));
}

TEST(PreTokenizer, WhitespaceKeepsWordsAndPunctuationRuns) {
  json pre = {{"type", "Whitespace"}};
  Tokenizer tok(tiny_tokenizer({}, json::array(), pre));
  // "ab  c" -> words "ab", "c" (no byte-level step here, so no space symbols either).
  EXPECT_EQ(tok.encode("ab  c"), (std::vector<int32_t>{4, 2}));
  EXPECT_EQ(Tokenizer(tiny_tokenizer({}, json::array(), {{"type", "WhitespaceSplit"}})).encode(" ab\tbc "),
            (std::vector<int32_t>{4, 7}));
}

TEST(Tokenizer, UnsupportedComponentsFailAtLoad) {
  json j = tiny_tokenizer();
  j["normalizer"] = {{"type", "Precompiled"}};
  EXPECT_THROW(Tokenizer{j}, hylora::Error);
  j = tiny_tokenizer();
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  EXPECT_THROW(Tokenizer{j}, hylora::Error);
  j = tiny_tokenizer();
  j["model"]["type"] = "WordPiece";
  EXPECT_THROW(Tokenizer{j}, hylora::Error);
  j = tiny_tokenizer();
  j["model"]["merges"] = json::array({"a zz"});
  try {
    Tokenizer{j};
    FAIL() << "expected an error";
  } catch (const hylora::Error& e) {
    EXPECT_NE(std::string(e.what()).find("merges[0]"), std::string::npos) << e.what();
  }
}

TEST(StreamDecoder, HoldsBackPartialCharacters) {
  // Byte tokens of "中" (E4 B8 AD) arrive one at a time.
  json vocab = json::object();
  std::string all;
  for (int b = 0; b < 256; ++b) vocab[byte_to_symbol(static_cast<unsigned char>(b))] = b;
  json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}},
            {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}},
            {"decoder", {{"type", "ByteLevel"}}}};
  Tokenizer tok(j);
  StreamDecoder s(tok);
  EXPECT_EQ(s.push(0xE4), "");
  EXPECT_EQ(s.push(0xB8), "");
  EXPECT_EQ(s.push(0xAD), "\xE4\xB8\xAD");
  EXPECT_EQ(s.push('a'), "a");
  EXPECT_EQ(s.push(0xE4), "");
  EXPECT_EQ(s.push('b'), kFFFD + "b");  // the sequence was cut: replaced once the next byte shows it
  EXPECT_EQ(s.push(0xF0), "");
  EXPECT_EQ(s.finish(), kFFFD);
}

}  // namespace
}  // namespace hylora::text
