// safetensors: the whole file image (header length, header JSON, data section); every tensor it accepts is read.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy the parser may keep pointers into (as the mmap), with the fuzzer's exact bounds for ASan.
  auto buf = std::shared_ptr<uint8_t[]>(new uint8_t[size ? size : 1]);
  if (size) std::memcpy(buf.get(), data, size);
  try {
    auto tensors = hylora::parse_safetensors(buf.get(), size, "fuzz.safetensors", buf);
    for (auto& [name, info] : tensors) (void)hylora::tensor_to_f32(info);
  } catch (const hylora::Error&) {
  }
  return 0;
}
