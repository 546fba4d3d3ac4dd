#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <tuple>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/json_limits.h"

namespace hylora {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

DType parse_dtype(const std::string& s, const std::string& tensor, const std::string& file) {
  if (s == "F32") return DType::F32;
  if (s == "BF16") return DType::BF16;
  if (s == "F16") return DType::F16;
  if (s == "F64") return DType::F64;  // adapters saved from float64 training runs; converted like the others
  fail(file, ": tensor ", tensor, " has dtype ", s, "; supported dtypes are F32, F64, BF16 and F16");
}

std::shared_ptr<void> map_file(const std::string& path, size_t& size) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path, ": cannot open (", std::strerror(errno), ")");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, ": cannot stat");
  }
  size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    fail(path, ": file is empty, expected a safetensors file");
  }
  void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) fail(path, ": mmap failed (", std::strerror(errno), ")");
  return std::shared_ptr<void>(p, [size](void* q) { munmap(q, size); });
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  size_t size = 0;
  mapping_ = map_file(path, size);
  tensors_ = parse_safetensors(static_cast<const uint8_t*>(mapping_.get()), size, path, mapping_);
}

std::map<std::string, TensorInfo> parse_safetensors(const uint8_t* base, size_t size, const std::string& path,
                                                    const std::shared_ptr<void>& mapping) {
  std::map<std::string, TensorInfo> tensors_;
  if (size < 8) fail(path, ": truncated safetensors file (", size, " bytes, shorter than the 8-byte header length)");
  uint64_t header_len = 0;
  std::memcpy(&header_len, base, 8);
  const JsonLimits& limits = json_limits::kSafetensorsHeader;
  if (header_len > limits.max_bytes)
    fail(path, ": truncated or not a safetensors file (header length ", header_len, " is over the limit of ",
         limits.max_bytes, " bytes)");
  if (header_len > size - 8)
    fail(path, ": truncated or not a safetensors file (header claims ", header_len, " bytes, file has ", size, ")");
  json header = parse_json_bounded<json>(
      std::string_view(reinterpret_cast<const char*>(base + 8), header_len), limits, path + ": safetensors header");
  if (!header.is_object()) fail(path, ": safetensors header must be a JSON object");
  const uint8_t* data_start = base + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  // (begin, end, name): checked below to tile the data section exactly, as upstream safetensors requires.
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> ranges;
  for (auto& item : header.items()) {
    const std::string name = item.key();
    const json& entry = item.value();
    if (name == "__metadata__") continue;
    const auto bad = [&](const auto&... what) { fail(path, ": tensor ", name, ": ", what...); };
    if (!entry.is_object()) bad("header entry must be an object, found ", entry.dump());
    if (!entry.contains("dtype") || !entry["dtype"].is_string()) bad("\"dtype\" must be a string");
    TensorInfo info;
    info.name = name;
    info.file = path;
    info.dtype = parse_dtype(entry["dtype"].get<std::string>(), name, path);
    if (!entry.contains("shape") || !entry["shape"].is_array()) bad("\"shape\" must be a list of integers");
    // Bytes the shape needs, saturating instead of overflowing; compared with the range below, which is itself
    // bounded by the file, so nothing is ever sized from an unchecked shape.
    uint64_t expected = dtype_size(info.dtype);
    bool saturated = false;
    for (auto& d : entry["shape"]) {
      int64_t v = 0;
      if (!json_int_in_range(d, 0, INT64_MAX, v)) bad("shape ", entry["shape"].dump(), " must hold integers >= 0");
      info.shape.push_back(v);
      if (v != 0 && expected > UINT64_MAX / static_cast<uint64_t>(v)) saturated = true;
      else expected *= static_cast<uint64_t>(v);
    }
    if (saturated) expected = UINT64_MAX;
    const json& off = entry.contains("data_offsets") ? entry["data_offsets"] : json();
    int64_t b = 0, e = 0;
    if (!off.is_array() || off.size() != 2 || !json_int_in_range(off[0], 0, INT64_MAX, b) ||
        !json_int_in_range(off[1], b, INT64_MAX, e))
      bad("\"data_offsets\" must be [begin, end] with 0 <= begin <= end, found ", off.dump());
    if (static_cast<uint64_t>(e) > data_size)
      fail(path, ": truncated safetensors file: tensor ", name, " ends at byte ", e,
           " of the data section but the file holds only ", data_size);
    if (saturated || static_cast<uint64_t>(e - b) != expected)
      bad("has ", e - b, " bytes, expected ", saturated ? std::string("more than 2^64") : std::to_string(expected),
          " for dtype ", entry["dtype"].get<std::string>(), " and shape ", shape_str(info.shape));
    info.data = data_start + b;
    info.mapping = mapping;
    ranges.emplace_back(b, e, name);
    tensors_.emplace(name, std::move(info));
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t at = 0;
  for (auto& [b, e, name] : ranges) {
    if (b != at)
      fail(path, ": tensor ", name, " starts at byte ", b, " of the data section, expected ", at,
           b < at ? " (it overlaps the tensor before it)" : " (a gap: tensors must be contiguous)");
    at = e;
  }
  if (at != data_size)
    fail(path, ": ", data_size - at, " bytes after the last tensor (trailing data: not a valid safetensors file)");
  return tensors_;
}

Checkpoint Checkpoint::open_file(const std::string& path) {
  Checkpoint c;
  c.where_ = path;
  auto f = std::make_shared<SafetensorsFile>(path);
  c.files_.push_back(f);
  c.tensors_ = f->tensors();
  return c;
}

Checkpoint Checkpoint::open_dir(const std::string& dir) {
  fs::path single = fs::path(dir) / "model.safetensors";
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    Checkpoint c = open_file(single.string());
    c.where_ = dir;
    return c;
  }
  if (!fs::exists(index))
    fail(dir, ": no model.safetensors or model.safetensors.index.json found (only safetensors checkpoints are "
              "supported)");
  json idx = read_json_file_bounded<json>(index.string(), json_limits::kConfig);
  if (!idx.contains("weight_map") || !idx["weight_map"].is_object())
    fail(index.string(), ": expected an object field \"weight_map\"");
  Checkpoint c;
  c.where_ = dir;
  std::map<std::string, std::shared_ptr<SafetensorsFile>> opened;
  for (auto& [name, file] : idx["weight_map"].items()) {
    if (!file.is_string())
      fail(index.string(), ": weight_map[\"", name, "\"] must be a shard file name, found ", file.dump());
    std::string fname = file.get<std::string>();
    if (fname.empty() || fname.find('/') != std::string::npos || fname == "." || fname == "..")
      fail(index.string(), ": weight_map[\"", name, "\"] = \"", fname, "\" must be a file name in ", dir);
    if (!opened.count(fname)) {
      fs::path p = fs::path(dir) / fname;
      if (!fs::exists(p)) fail(index.string(), ": shard ", fname, " (holding ", name, ") is missing");
      opened[fname] = std::make_shared<SafetensorsFile>(p.string());
      c.files_.push_back(opened[fname]);
    }
    auto& tensors = opened[fname]->tensors();
    auto it = tensors.find(name);
    if (it == tensors.end()) fail(index.string(), ": tensor ", name, " is listed in shard ", fname, " but not in it");
    c.tensors_.emplace(name, it->second);
  }
  return c;
}

const TensorInfo& Checkpoint::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail(where_, ": tensor ", name, " is missing (maybe the wrong base model?)");
  return it->second;
}

void elements_to_f32(const TensorInfo& t, int64_t first, int64_t n, float* dst) {
  const auto* base = static_cast<const uint8_t*>(t.data);
  switch (t.dtype) {
    case DType::F32:
      std::memcpy(dst, base + first * 4, n * 4);
      break;
    // Offsets need not be 2-byte aligned (safetensors does not require it): read through memcpy, not uint16_t*.
    case DType::BF16:
    case DType::F16: {
      const uint8_t* src = base + first * 2;
      const bool bf16 = t.dtype == DType::BF16;
      for (int64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, src + 2 * i, 2);
        dst[i] = bf16 ? bf16_to_f32(v) : f16_to_f32(v);
      }
      break;
    }
    case DType::F64: {
      double v;
      for (int64_t i = 0; i < n; ++i) {
        std::memcpy(&v, base + (first + i) * 8, 8);  // file offsets need not be 8-aligned
        dst[i] = static_cast<float>(v);
      }
      break;
    }
    case DType::I32:
      fail("internal: int32 tensors are not checkpoint weights");
  }
}

int64_t stored_element_bytes(DType d) {
  switch (d) {
    case DType::F32:
    case DType::I32: return 4;
    case DType::BF16:
    case DType::F16: return 2;
    case DType::F64: return 8;
  }
  return 4;
}

Tensor tensor_to_f32(const TensorInfo& t) {
  Tensor out = Tensor::empty(t.shape);
  elements_to_f32(t, 0, out.numel(), out.f32());
  return out;
}

Tensor Checkpoint::to_f32(const std::string& name) const { return tensor_to_f32(info(name)); }

}  // namespace hylora
