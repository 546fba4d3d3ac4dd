// A PEFT adapter directory: adapter_config.json + adapter_model.safetensors, loaded onto the bundled Qwen3.5 model.
// Input: [u32 little-endian length of the config][config bytes][safetensors bytes] (scripts/fuzz.sh builds the
// seeds from tests/fixtures/qwen3_5_causal_lora/adapters).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "lora/adapter_loader.h"

namespace {
void write_file(const std::string& path, const uint8_t* p, size_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto model = hylora::load_model(HYLORA_FIXTURES_DIR "/qwen3_5_causal_bf16/model");
  static const hylora::lora::TargetIndex index(*model);
  static const std::string dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("hylora-fuzz-adapter-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  if (size < 4) return 0;
  uint32_t n;
  std::memcpy(&n, data, 4);
  if (n > size - 4) n = static_cast<uint32_t>(size - 4);
  write_file(dir + "/adapter_config.json", data + 4, n);
  write_file(dir + "/adapter_model.safetensors", data + 4 + n, size - 4 - n);
  try {
    (void)hylora::lora::load_adapter("fuzz", dir, index, 64);
  } catch (const hylora::Error&) {
  }
  return 0;
}
