#include "cli/bench_hardware.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "core/exec_ctx.h"
#include "io/random_weights.h"
#include "ops/device.h"
#include "ops/linear.h"

namespace hylora::cli {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Fastest of `reps` runs of f (after one warm-up); f must return only when its work is done. The fastest, not the
// median: these rates set the floors, which must be what the hardware can reach, and a probe slowed by other work on
// the machine would otherwise raise the floors above steps measured later at full speed.
template <typename F>
double fastest_seconds(int reps, F&& f) {
  f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(seconds_since(t0));
  }
  return *std::min_element(t.begin(), t.end());
}

std::string first_line_of(const char* command) {
  std::string out;
  if (FILE* p = popen(command, "r")) {
    char buf[256];
    if (std::fgets(buf, sizeof buf, p)) out = buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
  return out;
}
}  // namespace

HardwareRates measure_hardware(Device device, DType dtype, int64_t copy_mib, int64_t gemm_n) {
  HardwareRates r;
  ExecCtx ctx{device, nullptr, ScratchArena(ops::allocator_for(device))};
  Allocator& alloc = ops::allocator_for(device);
  {
    const int64_t n = copy_mib * (1 << 20) / 4;
    Tensor host = random_normal({n}, 1, "bench.copy", 1.0f);  // [n]: real values, so no page is left untouched
    Tensor a = device == Device::CPU ? host : ops::to_device(ctx, host, device);
    Tensor b = Tensor::empty({n}, DType::F32, alloc);
    r.copy_bytes = n * 4;
    // copy_tensor returns when dst is readable on the host, so wall time covers the whole copy.
    const double s = fastest_seconds(5, [&] { ops::copy_tensor(ctx, a, b); });
    r.copy_bytes_per_s = 2.0 * static_cast<double>(r.copy_bytes) / s;
  }
  r.gemm_size = gemm_n;
  Tensor x = random_normal({gemm_n, gemm_n}, 2, "bench.gemm.x", 1.0f);  // [n, n]
  Tensor w = random_normal({gemm_n, gemm_n}, 3, "bench.gemm.w", 1.0f);  // [n, n]
  // The GEMM the model runs: float32, or with --dtype bfloat16 on the GPU bf16 weights and x cast to bf16, fp32
  // accumulation and output (design.md, weight dtype policy).
  r.gemm_dtype = device == Device::CUDA && dtype == DType::BF16 ? DType::BF16 : DType::F32;
  {
    Tensor xd = x, wd = w;
    if (device != Device::CPU) {
      xd = ops::to_device(ctx, x, device);
      wd = ops::to_device(ctx, w, device, r.gemm_dtype);
    }
    Tensor y = Tensor::empty({gemm_n, gemm_n}, DType::F32, alloc);  // [n, n]
    const double s = fastest_seconds(5, [&] {
      ops::matmul_nt(ctx, xd, wd, y);
      ops::synchronize(ctx);
    });
    r.gemm_flop_per_s =
        2.0 * static_cast<double>(gemm_n) * static_cast<double>(gemm_n) * static_cast<double>(gemm_n) / s;
  }
  return r;
}

std::string card_name(Device device) {
  if (device == Device::CUDA) {
    std::string n = first_line_of("nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null");
    return n.empty() ? "unknown GPU" : n;
  }
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  return "unknown CPU";
}

}  // namespace hylora::cli
