// The EOS ids a model directory declares (generation_config.json, else config.json): read under the config JSON
// limits, and checked as exact integers (issue 11: a model directory is outside data).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "scheduler/generation_config.h"

namespace hylora::scheduler {
namespace {
namespace fs = std::filesystem;

// A fresh model directory holding only the given generation_config.json / config.json texts (empty: absent).
fs::path model_dir(const std::string& name, const std::string& generation_config, const std::string& config = "") {
  fs::path p = fs::temp_directory_path() / ("hylora_test_gencfg_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  if (!generation_config.empty()) std::ofstream(p / "generation_config.json") << generation_config;
  if (!config.empty()) std::ofstream(p / "config.json") << config;
  return p;
}

std::string error_of(const fs::path& dir) {
  try {
    read_eos_token_ids(dir.string());
    return "(no error)";
  } catch (const std::exception& e) {
    return e.what();
  }
}

TEST(GenerationConfig, EosIdsFromEitherFileAsIntOrList) {
  EXPECT_EQ(read_eos_token_ids(model_dir("list", R"({"eos_token_id": [7, 9]})").string()),
            (std::vector<int32_t>{7, 9}));
  EXPECT_EQ(read_eos_token_ids(model_dir("int", R"({"eos_token_id": 5})").string()), (std::vector<int32_t>{5}));
  EXPECT_EQ(read_eos_token_ids(model_dir("nested", "", R"({"text_config": {"eos_token_id": 3}})").string()),
            (std::vector<int32_t>{3}));
  EXPECT_TRUE(read_eos_token_ids(model_dir("none", "").string()).empty());
}

TEST(GenerationConfig, IdsOutsideInt32AreRefusedNotWrapped) {
  // 4294967296 used to become 0: every request would have ended at token 0.
  std::string msg = error_of(model_dir("wrap", R"({"eos_token_id": [2, 4294967296]})"));
  EXPECT_NE(msg.find("eos_token_id must be an integer in [0, 2^31-1] or a list of them, found 4294967296"),
            std::string::npos)
      << msg;
  msg = error_of(model_dir("neg", R"({"eos_token_id": -1})"));
  EXPECT_NE(msg.find("found -1"), std::string::npos) << msg;
  msg = error_of(model_dir("frac", R"({"eos_token_id": 2.5})"));
  EXPECT_NE(msg.find("found 2.5"), std::string::npos) << msg;
}

TEST(GenerationConfig, DeepOrInvalidJsonIsAClearError) {
  const std::string deep = "{\"x\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  std::string msg = error_of(model_dir("deep", deep));
  EXPECT_NE(msg.find("generation_config.json: JSON nesting depth is over the limit of 64"), std::string::npos) << msg;
  msg = error_of(model_dir("bad", "{\"eos_token_id\": "));
  EXPECT_NE(msg.find("generation_config.json: not valid JSON"), std::string::npos) << msg;
}

}  // namespace
}  // namespace hylora::scheduler
