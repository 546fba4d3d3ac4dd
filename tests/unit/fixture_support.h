#pragma once
// Black-box helpers for the tests that run the real `hylora score` binary on the committed fixtures
// (golden_test.cpp, lora_ablation_test.cpp): the fixture manifest, JSON(L) files, running a command, a filtered copy
// of a safetensors file. Nothing here includes the engine's headers, so these tests survive refactors of its
// internals.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "shell_and_jsonl.h"

namespace hylora::fixtures {

namespace fs = std::filesystem;
using json = nlohmann::json;

inline const fs::path kRoot = HYLORA_FIXTURES_DIR;

inline json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  return json::parse(in);
}

using shell_and_jsonl::read_jsonl;
using shell_and_jsonl::run_command;
using shell_and_jsonl::write_jsonl;

// The JSON result lines of `hylora score` output (other lines, e.g. warnings on stderr merged in, are skipped).
inline std::vector<json> result_lines(const std::string& out) {
  std::vector<json> got;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line[0] == '{') got.push_back(json::parse(line));
  return got;
}

struct Case {
  std::string name;
  fs::path dir;
};
inline void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// The golden cases named by tests/fixtures/MANIFEST.json (empty when it is unreadable: GoldenFixtures.* fail then).
inline std::vector<Case> golden_cases() {
  std::vector<Case> cases;
  try {
    const json m = read_json(kRoot / "MANIFEST.json");
    for (auto& n : m.at("golden"))
      cases.push_back({n.get<std::string>(), kRoot / n.get<std::string>()});
  } catch (const std::exception&) {
  }
  return cases;
}

inline std::vector<Case> adapter_cases() {
  std::vector<Case> out;
  for (auto& c : golden_cases()) try {
      if (!read_json(c.dir / "case.json").value("adapters", json::object()).empty()) out.push_back(c);
    } catch (const std::exception&) {
      out.push_back(c);  // unreadable: keep it, so that the test fails loudly
    }
  return out;
}

inline std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string s = info.param.name;
  for (auto& ch : s)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

// The largest limit of a case over its schedules (limits.json).
inline double max_limit(const Case& c) {
  double m = 0;
  const json lim = read_json(c.dir / "limits.json");
  for (auto& [k, v] : lim.at("schedules").items()) m = std::max(m, v.at("limit").get<double>());
  return m;
}

inline std::string quote(const std::string& s) { return "'" + s + "'"; }

// safetensors: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, the data.
// Writes a copy of `src` without the tensors for which drop(name) is true.
inline void copy_safetensors_without(const fs::path& src, const fs::path& dst,
                                     const std::function<bool(const std::string&)>& drop) {
  std::ifstream in(src, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + src.string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const json header = json::parse(bytes.substr(8, n));
  const char* data = bytes.data() + 8 + n;
  json out_header = json::object();
  std::string out_data;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      out_header[name] = info;
      continue;
    }
    if (drop(name)) continue;
    const uint64_t b = info["data_offsets"][0], e = info["data_offsets"][1];
    json t = info;
    t["data_offsets"] = {out_data.size(), out_data.size() + (e - b)};
    out_data.append(data + b, e - b);
    out_header[name] = t;
  }
  std::string h = out_header.dump();
  while (h.size() % 8) h += ' ';
  const uint64_t hn = h.size();
  std::ofstream out(dst, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&hn), 8);
  out << h << out_data;
}

inline std::vector<std::string> safetensors_names(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  std::string h(n, '\0');
  in.read(h.data(), static_cast<std::streamsize>(n));
  std::vector<std::string> out;
  const json header = json::parse(h);
  for (auto& [name, info] : header.items())
    if (name != "__metadata__") out.push_back(name);
  return out;
}

// A whole safetensors file in memory: name -> (dtype, shape, raw little-endian bytes).
struct StTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

inline std::map<std::string, StTensor> read_safetensors(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const json header = json::parse(bytes.substr(8, n));
  std::map<std::string, StTensor> out;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    const uint64_t b = info["data_offsets"][0], e = info["data_offsets"][1];
    out[name] = {info["dtype"].get<std::string>(), info["shape"].get<std::vector<int64_t>>(), bytes.substr(8 + n + b, e - b)};
  }
  return out;
}

inline void write_safetensors(const fs::path& p, const std::map<std::string, StTensor>& tensors) {
  json header = {{"__metadata__", {{"format", "pt"}}}};
  std::string data;
  for (auto& [name, t] : tensors) {
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  const uint64_t hn = h.size();
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&hn), 8);
  out << h << data;
}

// The values of a BF16 or F32 tensor as floats.
inline std::vector<float> to_f32(const StTensor& t) {
  std::vector<float> v;
  if (t.dtype == "F32") {
    v.resize(t.bytes.size() / 4);
    std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  } else if (t.dtype == "BF16") {
    v.resize(t.bytes.size() / 2);
    for (size_t i = 0; i < v.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, t.bytes.data() + 2 * i, 2);
      const uint32_t bits = static_cast<uint32_t>(h) << 16;
      std::memcpy(&v[i], &bits, 4);
    }
  } else {
    throw std::runtime_error("to_f32: unsupported dtype " + t.dtype);
  }
  return v;
}

inline StTensor f32_tensor(const std::vector<int64_t>& shape, const std::vector<float>& v) {
  StTensor t{"F32", shape, std::string(v.size() * 4, '\0')};
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

}  // namespace hylora::fixtures
