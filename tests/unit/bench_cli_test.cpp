// `hylora bench` on the CPU with a tiny config: a test of the program (its table and JSON have every workload with
// positive floors derived consistently from the measured rates; the files it was asked for exist), not of any speed. No assertion compares a measured time
// with a floor: a tiny model lives in the CPU's caches and beats a DRAM copy probe, and timing is not a test.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kTiny = fs::path(HYLORA_FIXTURES_DIR) / ".." / ".." / "bench" / "configs" / "tiny";

std::string bench(const std::string& args, int& status) {
  return hylora::test_support::run_command(std::string(HYLORA_BINARY) + " bench " + args + " 2>&1", status);
}

// Small sizes so that the whole run takes seconds on the CPU.
const std::string kSmall = " --random-weights --device cpu --context 24 --batch 8 --prefill-long 64 --prefill-seqs 3 "
                           "--prefill-len 16 --warmup 1 --repeats 3 --copy-mib 8 --gemm-n 512 --card test-cpu "
                           "--commit test";

TEST(BenchCli, EveryWorkloadHasConsistentPositiveFloors) {
  for (const char* config : {"qwen3_5_tiny.json", "nemotron_h_tiny.json", "deepseek_v3_tiny.json"}) {
    const fs::path dir = hylora::test_support::temp_dir(std::string("bench_") + config);
    int status = 0;
    const std::string out = bench("--config " + (kTiny / config).string() + kSmall + " --out " +
                                      (dir / "r.md").string() + " --json " + (dir / "r.json").string(),
                                  status);
    ASSERT_EQ(status, 0) << out;
    std::ifstream f(dir / "r.json");
    const json j = json::parse(f);
    EXPECT_EQ(j["card"], "test-cpu");
    EXPECT_EQ(j["commit"], "test");
    EXPECT_GT(j["copy_bytes_per_s"].get<double>(), 0);
    EXPECT_GT(j["gemm_flop_per_s"].get<double>(), 0);
    std::set<std::string> names;
    for (const json& w : j["workloads"]) {
      const std::string name = w["name"];
      names.insert(name);
      EXPECT_EQ(w["ms"].size(), 3u) << name;
      EXPECT_GT(w["bytes"].get<double>(), 0) << name;
      EXPECT_GT(w["flop"].get<double>(), 0) << name;
      EXPECT_GT(w["bytes_floor_ms"].get<double>(), 0) << name;
      EXPECT_GT(w["flop_floor_ms"].get<double>(), 0) << name;
      // The floors are the cost divided by the rates bench measured, and the step's floor is the larger one.
      const double copy = j["copy_bytes_per_s"].get<double>(), gemm = j["gemm_flop_per_s"].get<double>();
      EXPECT_NEAR(w["bytes_floor_ms"].get<double>(), w["bytes"].get<double>() / copy * 1e3,
                  1e-9 * w["bytes_floor_ms"].get<double>()) << config << " " << name;
      EXPECT_NEAR(w["flop_floor_ms"].get<double>(), w["flop"].get<double>() / gemm * 1e3,
                  1e-9 * w["flop_floor_ms"].get<double>()) << config << " " << name;
      EXPECT_DOUBLE_EQ(w["floor_ms"].get<double>(),
                       std::max(w["bytes_floor_ms"].get<double>(), w["flop_floor_ms"].get<double>())) << name;
      EXPECT_NEAR(w["measured_over_floor"].get<double>(), w["ms_median"].get<double>() / w["floor_ms"].get<double>(),
                  1e-9 * w["measured_over_floor"].get<double>()) << name;
      EXPECT_GT(w["weight_bytes"].get<double>(), 0) << name;
      if (w["adapters"].get<int>() > 0) {
        EXPECT_GT(w["lora_bytes"].get<double>(), 0) << name;
        EXPECT_FALSE(w["baseline"].get<std::string>().empty()) << name;
        EXPECT_GT(w["ideal_overhead"].get<double>(), 0) << name;
      }
    }
    for (const char* want : {"decode_b1_a0", "decode_b8_a0", "decode_b8_a8_r16", "decode_b8_a1_r64",
                             "prefill_1x64_a0", "prefill_1x64_a1_r16", "prefill_3x16_a0", "prefill_3x16_a3_r16"})
      EXPECT_TRUE(names.count(want)) << config << ": no " << want;
    std::ifstream md(dir / "r.md");
    const std::string table((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
    EXPECT_NE(table.find("| workload | seqs × new tokens |"), std::string::npos);
    EXPECT_NE(table.find("| decode_b8_a8_r16 |"), std::string::npos);
    EXPECT_NE(table.find("copy bandwidth"), std::string::npos);
    fs::remove_all(dir);
  }
}

TEST(BenchCli, LayersAndWorkloadSelectionAreReported) {
  int status = 0;
  const std::string out = bench("--config " + (kTiny / "qwen3_5_tiny.json").string() + kSmall +
                                    " --layers 2 --workloads decode_b1_a0,prefill",
                                status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("2 of 4 layers: 1 linear_attention, 3 full_attention"), std::string::npos) << out;
  EXPECT_NE(out.find("| decode_b1_a0 |"), std::string::npos);
  EXPECT_EQ(out.find("| decode_b8_a0 |"), std::string::npos);
  EXPECT_NE(out.find("| prefill_3x16_a0 |"), std::string::npos);
}

TEST(BenchCli, RefusesWhatItCannotDo) {
  int status = 0;
  std::string out = bench("--config " + (kTiny / "qwen3_5_tiny.json").string(), status);
  EXPECT_EQ(status, 1);
  EXPECT_NE(out.find("--random-weights is required"), std::string::npos) << out;
  out = bench("--config " + (kTiny / "qwen3_5_tiny.json").string() + kSmall + " --workloads decode_b2", status);
  EXPECT_EQ(status, 1);
  EXPECT_NE(out.find("unknown workload \"decode_b2\""), std::string::npos) << out;
}

}  // namespace
