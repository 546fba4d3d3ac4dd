#pragma once
// Writes a .safetensors file (used by tests to build checkpoints/adapters, and by tools that export tensors).
#include <map>
#include <string>

#include "core/tensor.h"

namespace hylora {

// Tensors are float32 host tensors; `as` picks the stored dtype (F32, BF16 rounded to nearest even, or F16 is not
// supported for writing).
void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors, DType as = DType::F32);

}  // namespace hylora
