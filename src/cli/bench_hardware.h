#pragma once
// What the card can do, measured at start-up (docs/performance.md): the copy bandwidth (a large device-to-device
// copy, read + written bytes counted; on the CPU a memcpy) and the dense GEMM rate (a large cuBLASLt GEMM; on the
// CPU OpenBLAS sgemm), both through the ops interface the model runs on. Median of several repetitions.
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace hylora::cli {

struct HardwareRates {
  double copy_bytes_per_s = 0;  // read + write
  double gemm_flop_per_s = 0;   // in `gemm_dtype`
  DType gemm_dtype = DType::F32;
  int64_t copy_bytes = 0;       // size of the buffer copied
  int64_t gemm_size = 0;        // M = N = K
};

// `copy_mib`: buffer size; `gemm_n`: the square GEMM's size. The GEMM runs in `dtype` (falls back to float32,
// saying so in gemm_dtype, when the backend has no GEMM in that dtype).
HardwareRates measure_hardware(Device device, DType dtype, int64_t copy_mib, int64_t gemm_n);

// The card's name: the GPU's (nvidia-smi) or the CPU model (/proc/cpuinfo); "unknown" when neither answers.
std::string card_name(Device device);

}  // namespace hylora::cli
