#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

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
  const auto* base = static_cast<const uint8_t*>(mapping_.get());
  if (size < 8) fail(path, ": truncated safetensors file (", size, " bytes, shorter than the 8-byte header length)");
  uint64_t header_len = 0;
  std::memcpy(&header_len, base, 8);
  if (header_len > size - 8)
    fail(path, ": truncated or not a safetensors file (header claims ", header_len, " bytes, file has ", size, ")");
  json header;
  try {
    header = json::parse(base + 8, base + 8 + header_len);
  } catch (const std::exception& e) {
    fail(path, ": safetensors header is not valid JSON (", e.what(), ")");
  }
  if (!header.is_object()) fail(path, ": safetensors header must be a JSON object");
  const uint8_t* data_start = base + 8 + header_len;
  size_t data_size = size - 8 - header_len;
  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    try {
      TensorInfo info;
      info.name = name;
      info.file = path;
      info.dtype = parse_dtype(entry.at("dtype").get<std::string>(), name, path);
      info.shape = entry.at("shape").get<Shape>();
      auto offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1]) fail(path, ": tensor ", name, " has bad data_offsets");
      uint64_t expected = shape_numel(info.shape) * dtype_size(info.dtype);
      if (offsets[1] - offsets[0] != expected)
        fail(path, ": tensor ", name, " has ", offsets[1] - offsets[0], " bytes, expected ", expected, " for shape ",
             shape_str(info.shape));
      if (offsets[1] > data_size)
        fail(path, ": truncated safetensors file: tensor ", name, " ends at byte ", offsets[1],
             " of the data section but the file holds only ", data_size);
      info.data = data_start + offsets[0];
      info.mapping = mapping_;
      tensors_.emplace(name, std::move(info));
    } catch (const json::exception& e) {
      fail(path, ": malformed header entry for tensor ", name, " (", e.what(), ")");
    }
  }
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
  json idx;
  try {
    std::ifstream in(index);
    idx = json::parse(in);
  } catch (const std::exception& e) {
    fail(index.string(), ": not valid JSON (", e.what(), ")");
  }
  if (!idx.contains("weight_map") || !idx["weight_map"].is_object())
    fail(index.string(), ": expected an object field \"weight_map\"");
  Checkpoint c;
  c.where_ = dir;
  std::map<std::string, std::shared_ptr<SafetensorsFile>> opened;
  for (auto& [name, file] : idx["weight_map"].items()) {
    std::string fname = file.get<std::string>();
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

Tensor tensor_to_f32(const TensorInfo& t) {
  Tensor out = Tensor::empty(t.shape);
  float* dst = out.f32();
  int64_t n = out.numel();
  switch (t.dtype) {
    case DType::F32:
      std::memcpy(dst, t.data, n * 4);
      break;
    case DType::BF16: {
      const auto* src = static_cast<const uint16_t*>(t.data);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
      break;
    }
    case DType::F16: {
      const auto* src = static_cast<const uint16_t*>(t.data);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
      break;
    }
    case DType::F64: {
      double v;
      for (int64_t i = 0; i < n; ++i) {
        std::memcpy(&v, static_cast<const char*>(t.data) + i * 8, 8);  // file offsets need not be 8-aligned
        dst[i] = static_cast<float>(v);
      }
      break;
    }
    case DType::I32:
      fail("internal: int32 tensors are not checkpoint weights");
  }
  return out;
}

Tensor Checkpoint::to_f32(const std::string& name) const { return tensor_to_f32(info(name)); }

}  // namespace hylora
