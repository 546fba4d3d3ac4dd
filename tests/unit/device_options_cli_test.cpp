// The device flags (cli/device_options.h) are one declaration shared by score, serve and bench: every command offers
// them under the same names with the same checks and messages (bench only the three that apply to it), and what the
// build or machine cannot do is refused with the executor's message whichever command asked.
#include <gtest/gtest.h>

#include <string>

#include "test_support.h"

namespace {

const std::string kModel = std::string(HYLORA_FIXTURES_DIR) + "/nemotron_h/model";

std::string run(const std::string& args, int& status) {
  return hylora::test_support::run_command(std::string(HYLORA_BINARY) + " " + args + " 2>&1 </dev/null", status);
}

bool has(const std::string& out, const std::string& s) { return out.find(s) != std::string::npos; }

TEST(DeviceOptionsCli, EveryCommandOffersTheFlagsThatApplyToIt) {
  for (const char* cmd : {"score", "serve", "bench"}) {
    int status = 0;
    const std::string help = run(std::string(cmd) + " --help", status);
    EXPECT_EQ(status, 0) << cmd;
    for (const char* flag : {"--device", "--dtype", "--cuda-graphs"}) EXPECT_TRUE(has(help, flag)) << cmd << flag;
    const bool memory = std::string(cmd) != "bench";  // bench sizes its KV cache per workload
    EXPECT_EQ(has(help, "--mem-fraction"), memory) << cmd;
    EXPECT_EQ(has(help, "--kv-cache-tokens"), memory) << cmd;
  }
}

TEST(DeviceOptionsCli, BadValuesAreRefusedAlikeByEveryCommand) {
  for (const char* cmd : {"score", "serve"}) {
    const std::string base = std::string(cmd) + " --model " + kModel;
    int status = 0;
    std::string out = run(base + " --dtype float16", status);
    EXPECT_NE(status, 0);
    EXPECT_TRUE(has(out, "--dtype")) << out;
    out = run(base + " --device tpu", status);
    EXPECT_NE(status, 0);
    EXPECT_TRUE(has(out, "--device")) << out;
    out = run(base + " --cuda-graphs maybe", status);
    EXPECT_NE(status, 0);
    EXPECT_TRUE(has(out, "--cuda-graphs")) << out;
    out = run(base + " --mem-fraction 1.5", status);
    EXPECT_NE(status, 0);
    EXPECT_TRUE(has(out, "--mem-fraction")) << out;
    out = run(base + " --kv-cache-tokens -1", status);
    EXPECT_NE(status, 0);
    EXPECT_TRUE(has(out, "--kv-cache-tokens")) << out;
    // Parsed fine, refused by the executor with the same words for every command.
    out = run(base + " --device cpu --dtype bfloat16", status);
    EXPECT_NE(status, 0);
    EXPECT_TRUE(has(out, "--dtype bfloat16: the CPU reference backend computes in float32 only")) << cmd << ": " << out;
  }
  int status = 0;
  const std::string out = run("bench --config x.json --random-weights --dtype float16", status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(has(out, "--dtype")) << out;
}

}  // namespace
