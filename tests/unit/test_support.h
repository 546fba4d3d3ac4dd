#pragma once
// Helpers shared by the unit tests: error capture, scratch directories, JSONL, running the hylora binary, scoring
// a model several ways and comparing the results.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/scorer.h"

namespace hylora::test_support {

namespace fs = std::filesystem;

// The message of the hylora::Error that f throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A fresh, empty scratch directory unique to this test process.
inline fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("hylora_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

inline std::vector<nlohmann::json> read_jsonl(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Runs a shell command; returns its stdout and sets its exit status (-1 when it did not exit normally).
inline std::string run_command(const std::string& cmd, int& status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    status = -1;
    return out;
  }
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

// Random base-model requests of lengths 23, 1, 9, 40 over a vocabulary of `vocab` tokens.
inline std::vector<ScoreRequest> random_requests(int64_t vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(vocab - 1));
  std::vector<ScoreRequest> r;
  const std::pair<const char*, int> shapes[] = {{"a", 23}, {"b", 1}, {"c", 9}, {"d", 40}};
  for (auto [id, len] : shapes) {
    ScoreRequest q;
    q.id = id;
    for (int i = 0; i < len; ++i) q.input_ids.push_back(tok(rng));
    r.push_back(q);
  }
  return r;
}

// Scores `requests` with the given step shape (prefill chunk, rows per step).
inline std::vector<ScoreResult> score_with(Model& m, const std::vector<ScoreRequest>& requests, int64_t chunk,
                                           int64_t budget) {
  ScoreOptions o;
  o.prefill_chunk = chunk;
  o.max_batch_tokens = budget;
  return score_requests(m, requests, o);
}

// max |a - b| over the logprobs of one result pair (both must have succeeded and have the same length).
inline double max_diff(const ScoreResult& a, const ScoreResult& b) {
  EXPECT_TRUE(a.error.empty()) << a.error;
  EXPECT_TRUE(b.error.empty()) << b.error;
  EXPECT_EQ(a.logprobs.size(), b.logprobs.size());
  double d = 0;
  for (size_t i = 0; i < a.logprobs.size() && i < b.logprobs.size(); ++i)
    d = std::max(d, std::fabs(a.logprobs[i] - b.logprobs[i]));
  return d;
}

inline double max_diff(const std::vector<ScoreResult>& a, const std::vector<ScoreResult>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, max_diff(a[i], b[i]));
  return d;
}

}  // namespace hylora::test_support
