// Golden tests: run the real `hylora score` binary on every committed HF/PEFT fixture (tests/fixtures/<case>/,
// made on the GPU machine by tools/fixtures/make_fixtures.py) and require max |Δ logprob| against the float64
// reference to stay within that fixture's own limit (tests/fixtures/<case>/limits.json: 4× the measured error, at
// least 4e-6, never above 1e-3; written by tools/fixtures/limits.py, which also prints docs/testing.md's table).
// Each case runs three ways, each with its own limit: one prefill per sequence, token-by-token decoding
// (--prefill-chunk 1), and small chunks packed into small steps (chunked prefill across sequences).
// The cases come from tests/fixtures/MANIFEST.json, not from the directory: a missing folder or file fails.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "fixture_support.h"

namespace {
using namespace hylora::fixtures;

std::vector<Case> find_cases() { return golden_cases(); }

std::string run(const std::string& cmd, int& status) { return run_command(cmd, status); }

std::string score_command(const Case& c, const std::string& extra) {
  json cfg = read_json(c.dir / "case.json");
  std::string cmd = std::string(HYLORA_BINARY) + " score --model '" + (c.dir / "model").string() + "'";
  if (cfg.contains("adapters"))
    for (auto& [name, path] : cfg["adapters"].items())
      cmd += " --lora '" + name + "=" + (c.dir / path.get<std::string>()).string() + "'";
  if (cfg.contains("score_args"))
    for (auto& a : cfg["score_args"]) cmd += " '" + a.get<std::string>() + "'";
  return cmd + " " + extra + " < '" + (c.dir / "requests.jsonl").string() + "' 2>&1";
}

class Golden : public ::testing::TestWithParam<Case> {};

void check_against_reference(const Case& c, const std::string& schedule, const std::string& extra) {
  ASSERT_TRUE(fs::exists(c.dir / "case.json")) << c.dir << " missing (fixtures are committed; see MANIFEST.json)";
  ASSERT_TRUE(fs::exists(c.dir / "expected.jsonl")) << c.dir << "/expected.jsonl missing";
  ASSERT_TRUE(fs::exists(c.dir / "limits.json")) << c.dir << "/limits.json missing (tools/fixtures/limits.py measure)";
  const json lim = read_json(c.dir / "limits.json").at("schedules").at(schedule);
  const double limit = lim.at("limit").get<double>(), measured = lim.at("measured").get<double>();
  ASSERT_LE(limit, 1e-3) << c.name << ": a limit above 1e-3 is never acceptable";
  ASSERT_LE(measured, limit) << c.name << ": limits.json is inconsistent";
  int status = 0;
  std::string cmd = score_command(c, extra);
  std::string out = run(cmd, status);
  ASSERT_EQ(status, 0) << cmd << "\n" << out.substr(0, 2000);
  std::vector<json> got = result_lines(out);
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
  EXPECT_LE(worst, limit) << c.name << " " << extra << ": worst at " << worst_id << " (limits.json: measured "
                          << measured << ", limit " << limit << ")";
  std::printf("[golden] %-28s %-17s max|dlogprob| = %.3g (recorded %.3g, limit %.3g)\n", c.name.c_str(),
              schedule.c_str(), worst, measured, limit);
}

// The schedule names are the keys of limits.json (tools/fixtures/limits.py SCHEDULES).
TEST_P(Golden, OnePrefillPerSequence) { check_against_reference(GetParam(), "one_prefill", ""); }
TEST_P(Golden, TokenByTokenDecode) { check_against_reference(GetParam(), "token_by_token", "--prefill-chunk 1"); }
TEST_P(Golden, ChunkedPrefillInSmallSteps) {
  check_against_reference(GetParam(), "chunked_37_in_64", "--prefill-chunk 37 --max-batch-tokens 64");
}

// Presence: the manifest and the directory agree, and every case has every file it needs. (Whether each adapter
// changes the engine's output, and each of its module groups, is checked from the engine's own output in
// lora_ablation_test.cpp.)
std::set<std::string> folders() {
  std::set<std::string> out;
  for (auto& e : fs::directory_iterator(kRoot))
    if (e.is_directory()) out.insert(e.path().filename().string());
  return out;
}

TEST(GoldenFixtures, ManifestListsEveryFolder) {
  ASSERT_TRUE(fs::exists(kRoot / "MANIFEST.json")) << "tests/fixtures/MANIFEST.json missing";
  const json m = read_json(kRoot / "MANIFEST.json");
  std::set<std::string> listed;
  for (auto& n : m.at("golden")) listed.insert(n.get<std::string>());
  for (auto& [n, entries] : m.at("other").items()) listed.insert(n);
  EXPECT_GE(m.at("golden").size(), 22u);
  const auto present = folders();
  for (auto& n : listed) EXPECT_TRUE(present.count(n)) << "fixture folder " << n << " listed in MANIFEST.json is missing";
  for (auto& n : present) EXPECT_TRUE(listed.count(n)) << "fixture folder " << n << " is not listed in MANIFEST.json";
  // The non-golden folders hold exactly the entries listed (bad adapters, the tiny tokenizer).
  for (auto& [n, entries] : m.at("other").items()) {
    std::set<std::string> want, got;
    for (auto& e : entries) want.insert(e.get<std::string>());
    if (fs::exists(kRoot / n))
      for (auto& e : fs::directory_iterator(kRoot / n)) got.insert(e.path().filename().string());
    EXPECT_EQ(got, want) << "tests/fixtures/" << n;
  }
}

TEST(GoldenFixtures, EveryCaseHasEveryFile) {
  const auto cases = find_cases();
  ASSERT_FALSE(cases.empty()) << "no golden cases: MANIFEST.json unreadable";
  for (auto& c : cases) {
    for (const char* f : {"case.json", "requests.jsonl", "expected.jsonl", "limits.json", "model/config.json"})
      EXPECT_TRUE(fs::exists(c.dir / f)) << c.name << "/" << f << " missing";
    if (!fs::exists(c.dir / "case.json")) continue;
    const json cfg = read_json(c.dir / "case.json");
    bool weights = false;
    for (auto& e : fs::directory_iterator(c.dir / "model"))
      weights |= e.path().extension() == ".safetensors";
    EXPECT_TRUE(weights) << c.name << "/model has no .safetensors";
    std::set<std::string> used;
    for (auto& r : read_jsonl(c.dir / "requests.jsonl"))
      if (r.contains("lora") && !r["lora"].is_null()) used.insert(r["lora"].get<std::string>());
    EXPECT_EQ(read_jsonl(c.dir / "requests.jsonl").size(),
              read_jsonl(c.dir / "expected.jsonl").size())
        << c.name;
    const json adapters = cfg.value("adapters", json::object());
    for (auto& [name, path] : adapters.items()) {
      const fs::path d = c.dir / path.get<std::string>();
      EXPECT_TRUE(fs::exists(d / "adapter_config.json")) << c.name << ": adapter " << name;
      EXPECT_TRUE(fs::exists(d / "adapter_model.safetensors")) << c.name << ": adapter " << name;
      EXPECT_TRUE(used.count(name)) << c.name << ": adapter " << name << " has no request";
    }
    if (!adapters.empty()) {
      EXPECT_FALSE(used.empty()) << c.name << ": adapter case without adapter requests";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Golden, ::testing::ValuesIn(find_cases()), case_name);

}  // namespace
