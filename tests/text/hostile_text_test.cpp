// Hostile input (issue 11) for the text front end: chat templates from a model directory are bounded in output,
// loop iterations, recursion, range size and integer arithmetic; tokenizer.json is bounded in depth and ids; the
// tokenize / chat-template commands answer a hostile line with an error line and go on.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "test_support.h"
#include "text/jinja/template.h"
#include "text/tokenizer.h"

namespace hylora::text {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

bool has(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

std::string render_error(const std::string& source) {
  try {
    jinja::Template(source).render({});
  } catch (const hylora::Error& e) {
    return e.what();
  }
  return "(no error)";
}

const std::string kModel = std::string(HYLORA_TEXT_TEST_DIR) + "/../fixtures/qwen3_5_causal_bf16/model";

fs::path scratch(const std::string& name) {
  auto d = fs::temp_directory_path() / ("hylora_hostile_text_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Runs the binary with `input` on stdin; returns stdout + stderr and the exit status.
std::string run_cli(const std::string& args, const std::string& input, int& status, const std::string& redirect = "") {
  auto in = scratch("in") / "in.jsonl";
  std::ofstream(in, std::ios::binary) << input;
  // stderr joins the pipe before stdout is redirected (to /dev/full in the write-error tests).
  const std::string cmd = std::string(HYLORA_BINARY) + " " + args + " < " + in.string() + " 2>&1 " + redirect;
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

TEST(JinjaLimits, IntegerEdgesAreErrorsNotSignalsOrWraps) {
  EXPECT_TRUE(has(render_error("{{ (-9223372036854775807 - 1) // -1 }}"), "integer overflow")) ;
  EXPECT_EQ(jinja::Template("{{ (-9223372036854775807 - 1) % -1 }}").render({}), "0");
  EXPECT_TRUE(has(render_error("{{ 9223372036854775807 + 1 }}"), "integer overflow"));
  EXPECT_TRUE(has(render_error("{{ 4611686018427387904 * 2 }}"), "integer overflow"));
  EXPECT_TRUE(has(render_error("{{ -(-9223372036854775807 - 1) }}"), "integer overflow"));
  EXPECT_TRUE(has(render_error("{{ 2 ** 1000000000000 }}"), "integer overflow"));  // not 10^12 multiplications
  EXPECT_EQ(jinja::Template("{{ 3 ** 4 }} {{ (-2) ** 63 }}").render({}), "81 -9223372036854775808");
  const std::string msg = render_error("{{ 99999999999999999999999999 }}");
  EXPECT_TRUE(has(msg, "integer literal 99999999999999999999999999 is out of range")) << msg;
}

TEST(JinjaLimits, RangeIsCappedLikeTransformers) {
  EXPECT_TRUE(has(render_error("{{ range(1000000000) | length }}"), "over the limit of 100000"));
  EXPECT_TRUE(has(render_error("{{ range(-9223372036854775807, 9223372036854775807, 3) | length }}"),
                  "over the limit of 100000"));
  EXPECT_EQ(jinja::Template("{{ range(100000) | length }} {{ range(10, 0, -3) | list }}").render({}),
            "100000 [10, 7, 4, 1]");
}

TEST(JinjaLimits, RecursionAndNestingAreBounded) {
  EXPECT_TRUE(has(render_error("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}"), "recursion deeper than"));
  EXPECT_TRUE(has(render_error("{{ " + std::string(10000, '(') + "1" + std::string(10000, ')') + " }}"),
                  "nesting deeper than"));
  std::string sum = "1";
  for (int i = 0; i < 50000; ++i) sum += "+1";
  EXPECT_TRUE(has(render_error("{{ " + sum + " }}"), "nested deeper than"));
  std::string blocks;
  for (int i = 0; i < 5000; ++i) blocks += "{% if true %}";
  EXPECT_TRUE(has(render_error(blocks), "nesting deeper than"));
  EXPECT_TRUE(has(render_error("{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}"
                               "{% endfor %}{{ ns.l }}"),
                  "nested deeper than"));
  EXPECT_TRUE(has(render_error("{% set ns = namespace(x=1) %}{% set ns.x = ns %}{{ ns.x }}"), "namespace"));
}

TEST(JinjaLimits, OutputLoopsAndWorkAreBounded) {
  EXPECT_TRUE(has(render_error("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}"), "template output"));
  EXPECT_TRUE(has(render_error("{{ 'x' * 100000000000 }}"), "string repetition"));
  EXPECT_TRUE(has(render_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
                  "loop iterations"));
  EXPECT_TRUE(has(render_error("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}"
                               "{% set ns.l = ns.l + [i] %}{% endfor %}"),
                  "template work over the limit"));
}

TEST(TokenizerLimits, HugeIdsAndDeepComponentsAreRefused) {
  json j = json::parse(testing::read_file(kModel + "/tokenizer.json"));
  auto error_with = [](json t) {
    try {
      Tokenizer tok(t);
    } catch (const hylora::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  json big = j;
  big["model"]["vocab"]["zzz-huge"] = 100000000;
  EXPECT_TRUE(has(error_with(big), "id 100000000 for token 'zzz-huge' is not an integer in [0, ")) << error_with(big);
  big = j;
  big["model"]["vocab"]["zzz-huge"] = int64_t{1} << 40;  // used to wrap to 0
  EXPECT_TRUE(has(error_with(big), "id 1099511627776")) << error_with(big);
  big = j;
  big["added_tokens"].push_back({{"id", int64_t{1} << 40}, {"content", "<x>"}, {"special", true}});
  EXPECT_TRUE(has(error_with(big), "added_tokens: id 1099511627776")) << error_with(big);

  // A 20k-deep Sequence pre-tokenizer in the file: refused by the JSON depth limit, not a stack overflow.
  auto dir = scratch("deep_tok");
  std::string seq = "{\"type\": \"ByteLevel\"}";
  for (int i = 0; i < 20000; ++i) seq = "{\"type\": \"Sequence\", \"pretokenizers\": [" + seq + "]}";
  json shallow = j;
  shallow["pre_tokenizer"] = "PLACEHOLDER";
  std::string text = shallow.dump();
  text.replace(text.find("\"PLACEHOLDER\""), 13, seq);
  std::ofstream(dir / "tokenizer.json") << text;
  try {
    Tokenizer::from_directory(dir.string());
    FAIL() << "accepted a 20k-deep tokenizer.json";
  } catch (const hylora::Error& e) {
    EXPECT_TRUE(has(e.what(), "nesting depth is over the limit of 64")) << e.what();
  }
}

TEST(TextCliHostile, DecodeChecksTheWholeIdRange) {
  int status = 0;
  const std::string out = run_cli("tokenize --decode --model " + kModel,
                                  "{\"ids\": [4294967296]}\n{\"ids\": [2147483648]}\n{\"ids\": [-1]}\n"
                                  "{\"ids\": [18446744073709551615]}\n{\"ids\": [1]}\n",
                                  status);
  EXPECT_EQ(status, 1);
  EXPECT_TRUE(has(out, "token id 4294967296 is outside the vocabulary")) << out;
  EXPECT_TRUE(has(out, "token id 2147483648 is outside the vocabulary")) << out;
  EXPECT_TRUE(has(out, "token id 18446744073709551615 is outside the vocabulary")) << out;
  EXPECT_TRUE(has(out, "{\"text\":")) << out;
}

TEST(TextCliHostile, DeepAndLongLinesFailAlone) {
  int status = 0;
  const std::string deep = "{\"messages\":[],\"x\":" + std::string(20000, '[') + std::string(20000, ']') + "}\n";
  const std::string ok = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n";
  std::string out = run_cli("chat-template --model " + kModel, deep + ok, status);
  EXPECT_EQ(status, 1);
  EXPECT_TRUE(has(out, "nesting depth is over the limit of 64")) << out;
  EXPECT_TRUE(has(out, "{\"text\":")) << out;
  out = run_cli("tokenize --max-line-bytes 100 --model " + kModel,
                "{\"text\": \"" + std::string(500, 'a') + "\"}\n{\"text\": \"hi\"}\n", status);
  EXPECT_EQ(status, 1);
  EXPECT_TRUE(has(out, "line 1: 512 bytes is over the line limit of 100 bytes")) << out;
  EXPECT_TRUE(has(out, "{\"ids\":")) << out;
}

TEST(TextCliHostile, WriteErrorsExitNonZero) {
  int status = 0;
  std::string out = run_cli("tokenize --model " + kModel, "{\"text\": \"hi\"}\n", status, ">/dev/full");
  EXPECT_NE(status, 0);
  EXPECT_TRUE(has(out, "cannot write the output")) << out;
  out = run_cli("chat-template --model " + kModel, "{\"messages\": []}\n", status, ">/dev/full");
  EXPECT_NE(status, 0);
  EXPECT_TRUE(has(out, "cannot write the output")) << out;
}

}  // namespace
}  // namespace hylora::text
