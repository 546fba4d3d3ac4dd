// The activation/weight element types of the CUDA host functions: every kernel computes and accumulates in fp32,
// recurrent and SSM states are always fp32. Pointers typed `const void*` are of the call's DType.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace hylora::cuda {
enum class DType : int { f32 = 0, bf16 = 1 };
inline size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 2; }
}  // namespace hylora::cuda
