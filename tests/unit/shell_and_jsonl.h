#pragma once
// The two black-box chores every test that drives the `hylora` binary needs: JSON-lines files and running a shell
// command for its stdout and exit status. Engine-free, so fixture_support.h (black-box tests) and test_support.h
// (tests that also use the engine's headers) share one copy.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace hylora::shell_and_jsonl {

// Every non-empty line of `p` parsed as JSON; a missing file is an error (a test must not pass on no rows).
inline std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

inline void write_jsonl(const std::filesystem::path& p, const std::vector<nlohmann::json>& rows) {
  std::ofstream out(p);
  for (auto& r : rows) out << r.dump() << "\n";
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
  const int rc = pclose(p);
  status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

}  // namespace hylora::shell_and_jsonl
