#include "io/safetensors_writer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

namespace hylora {

void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors, DType as) {
  HYLORA_CHECK(as == DType::F32 || as == DType::BF16, "write_safetensors: only F32 and BF16 output is supported");
  nlohmann::json header = nlohmann::json::object();
  std::vector<char> data;
  for (auto& [name, t] : tensors) {
    const size_t begin = data.size();
    const float* p = t.f32();
    if (as == DType::F32) {
      data.insert(data.end(), reinterpret_cast<const char*>(p), reinterpret_cast<const char*>(p + t.numel()));
    } else {
      for (int64_t i = 0; i < t.numel(); ++i) {
        uint16_t b = f32_to_bf16(p[i]);
        data.insert(data.end(), reinterpret_cast<const char*>(&b), reinterpret_cast<const char*>(&b) + 2);
      }
    }
    header[name] = {{"dtype", as == DType::F32 ? "F32" : "BF16"},
                    {"shape", t.shape()},
                    {"data_offsets", {begin, data.size()}}};
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';  // the format pads the header with spaces to 8-byte alignment
  uint64_t len = h.size();
  std::ofstream out(path, std::ios::binary);
  if (!out) fail(path, ": cannot open for writing");
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) fail(path, ": write failed");
}

}  // namespace hylora
