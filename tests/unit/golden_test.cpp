// Golden tests: run the real `hylora score` binary on every committed HF/PEFT fixture (tests/fixtures/<case>/,
// made on the GPU machine by tools/fixtures/make_fixtures.py) and require max |Δ logprob| ≤ 1e-3 against the
// float64 reference. Each case runs three ways, which must all match: one prefill per sequence, token-by-token
// decoding (--prefill-chunk 1), and small chunks packed into small steps (chunked prefill across sequences).
#include <gtest/gtest.h>

#include "test_support.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

struct Case {
  std::string name;
  fs::path dir;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

bool has_adapters(const Case& c) {
  json cfg = json::parse(std::ifstream(c.dir / "case.json"));
  return cfg.contains("adapters") && !cfg["adapters"].empty();
}

std::vector<Case> find_cases() {
  std::vector<Case> cases;
  fs::path root = HYLORA_FIXTURES_DIR;
  if (!fs::exists(root)) return cases;
  for (auto& e : fs::directory_iterator(root))
    if (fs::exists(e.path() / "case.json") && fs::exists(e.path() / "expected.jsonl"))
      cases.push_back({e.path().filename().string(), e.path()});
  std::sort(cases.begin(), cases.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return cases;
}

using hylora::test_support::read_jsonl;

std::string run(const std::string& cmd, int& status) { return hylora::test_support::run_command(cmd, status); }

std::string score_command(const Case& c, const std::string& extra) {
  json cfg = json::parse(std::ifstream(c.dir / "case.json"));
  std::string cmd = std::string(HYLORA_BINARY) + " score --model '" + (c.dir / "model").string() + "'";
  if (cfg.contains("adapters"))
    for (auto& [name, path] : cfg["adapters"].items())
      cmd += " --lora '" + name + "=" + (c.dir / path.get<std::string>()).string() + "'";
  if (cfg.contains("score_args"))
    for (auto& a : cfg["score_args"]) cmd += " '" + a.get<std::string>() + "'";
  return cmd + " " + extra + " < '" + (c.dir / "requests.jsonl").string() + "' 2>&1";
}

class Golden : public ::testing::TestWithParam<Case> {};

void check_against_reference(const Case& c, const std::string& extra) {
  int status = 0;
  std::string cmd = score_command(c, extra);
  std::string out = run(cmd, status);
  ASSERT_EQ(status, 0) << cmd << "\n" << out.substr(0, 2000);
  std::vector<json> got;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line[0] == '{') got.push_back(json::parse(line));
  auto expected = read_jsonl(c.dir / "expected.jsonl");
  ASSERT_EQ(got.size(), expected.size()) << cmd;
  double worst = 0;
  std::string worst_id;
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(got[i]["id"], expected[i]["id"]) << "results must come back in input order";
    ASSERT_TRUE(got[i].contains("logprobs")) << got[i].dump();
    auto a = got[i]["logprobs"].get<std::vector<double>>();
    auto b = expected[i]["logprobs"].get<std::vector<double>>();
    ASSERT_EQ(a.size(), b.size()) << "request " << expected[i]["id"];
    for (size_t k = 0; k < a.size(); ++k) {
      double d = std::fabs(a[k] - b[k]);
      if (!(d <= worst)) {
        worst = std::isnan(d) ? INFINITY : d;
        worst_id = expected[i]["id"].get<std::string>() + "[" + std::to_string(k) + "]";
      }
    }
  }
  EXPECT_LE(worst, 1e-3) << c.name << " " << extra << ": worst at " << worst_id;
  std::printf("[golden] %-32s %-40s max|dlogprob| = %.3g\n", c.name.c_str(), extra.c_str(), worst);
}

TEST_P(Golden, OnePrefillPerSequence) { check_against_reference(GetParam(), ""); }
TEST_P(Golden, TokenByTokenDecode) { check_against_reference(GetParam(), "--prefill-chunk 1"); }
TEST_P(Golden, ChunkedPrefillInSmallSteps) {
  check_against_reference(GetParam(), "--prefill-chunk 37 --max-batch-tokens 64");
}

// Adapter cases must be meaningful: every adapter moves the reference logprobs visibly away from the base model,
// so a LoRA path that is silently skipped cannot pass the comparison above.
class GoldenAdapters : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenAdapters, EveryAdapterVisiblyChangesTheOutput) {
  json cfg = json::parse(std::ifstream(GetParam().dir / "case.json"));
  ASSERT_TRUE(cfg.contains("lora_effect")) << "adapter case without lora_effect";
  for (auto& [name, path] : cfg["adapters"].items()) {
    ASSERT_TRUE(cfg["lora_effect"].contains(name)) << name;
    EXPECT_GE(cfg["lora_effect"][name].get<double>(), 0.05) << "adapter " << name << " barely changes the output";
  }
}

TEST(GoldenFixtures, ArePresent) { EXPECT_GE(find_cases().size(), 8u) << "fixtures missing under " HYLORA_FIXTURES_DIR; }

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string s = info.param.name;
  for (auto& ch : s)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Golden, ::testing::ValuesIn(find_cases()), case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Golden);

std::vector<Case> adapter_cases() {
  std::vector<Case> out;
  for (auto& c : find_cases())
    if (has_adapters(c)) out.push_back(c);
  return out;
}
INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenAdapters, ::testing::ValuesIn(adapter_cases()), case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GoldenAdapters);

}  // namespace
