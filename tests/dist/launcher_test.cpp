// The multi-GPU launcher's checks (dist/launcher.h), on the CPU: flag combinations are refused with a message naming
// the flag, the group id survives its trip through the environment, and `hylora dist-check --tp 2` on a machine
// without two GPUs ends at once with a clear error instead of starting ranks that would wait forever.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "core/error.h"
#include "dist/launcher.h"

namespace hylora::dist {
namespace {

std::string error_of(const LaunchOptions& o, int gpus) {
  try {
    check_launch(o, gpus);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Launcher, RefusesFlagCombinationsWithTheFlagsName) {
  LaunchOptions o;
  o.tp = 2;
  EXPECT_EQ(error_of(o, 2), "");
  EXPECT_NE(error_of(o, 1).find("needs 2 GPUs on this host, but 1 are visible"), std::string::npos);
  o.tp = 0;
  EXPECT_NE(error_of(o, 8).find("--tp 0"), std::string::npos);
  o.tp = 6;
  o.nnodes = 4;
  EXPECT_NE(error_of(o, 8).find("not divisible by --nnodes 4"), std::string::npos);
  o.tp = 8;
  EXPECT_NE(error_of(o, 8).find("needs --dist-init-addr"), std::string::npos);
  o.dist_init_addr = "10.0.0.1";
  EXPECT_NE(error_of(o, 8).find("expected HOST:PORT"), std::string::npos);
  o.dist_init_addr = "10.0.0.1:29500";
  EXPECT_EQ(error_of(o, 2), "");  // 2 ranks on each of 4 hosts
  o.node_rank = 4;
  EXPECT_NE(error_of(o, 2).find("--node-rank 4"), std::string::npos);
}

TEST(Launcher, GroupIdRoundTripsThroughHex) {
  ops::CollectiveId id{};
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(i * 37 + 11);
  const std::string hex = id_to_hex(id);
  EXPECT_EQ(hex.size(), 256u);
  EXPECT_EQ(id_from_hex(hex), id);
  EXPECT_THROW(id_from_hex(hex.substr(2)), Error);
  std::string bad = hex;
  bad[5] = 'g';
  EXPECT_THROW(id_from_hex(bad), Error);
}

// This machine has no two GPUs: the command must refuse before starting any rank, with the launcher's message.
TEST(Launcher, DistCheckWithoutTheGpusEndsWithOneClearError) {
  const std::string cmd = std::string(HYLORA_BINARY) + " dist-check --tp 2 2>&1 </dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int status = pclose(p);
  EXPECT_NE(status, 0) << out;
  const bool no_gpus = out.find("needs 2 GPUs on this host") != std::string::npos;
  const bool no_cuda = out.find("no CUDA backend") != std::string::npos;
  EXPECT_TRUE(no_gpus || no_cuda) << out;
}

}  // namespace
}  // namespace hylora::dist
