#pragma once
// The compute-device flags shared by score, serve and bench (--device, --dtype, --cuda-graphs, and for the commands
// that size a KV cache from them, --mem-fraction and --kv-cache-tokens): declared, checked and mapped onto
// ExecutorOptions here so the three commands cannot drift apart. What the build or the machine cannot do (no CUDA
// backend or device, bfloat16 on the CPU) is refused by the Executor, with the same message for every command.
#include <CLI/CLI.hpp>
#include <string>

#include "engine/executor.h"

namespace hylora::cli {

struct DeviceOptions {
  std::string device = "cpu";       // cpu | cuda
  std::string dtype = "float32";    // float32 | bfloat16
  std::string cuda_graphs = "on";   // on | off
  std::string lora_overlap = "on";  // on | off
  double mem_fraction = ExecutorOptions{}.mem_fraction;
  int64_t kv_cache_tokens = ExecutorOptions{}.kv_cache_tokens;

  Device device_kind() const { return device == "cuda" ? Device::CUDA : Device::CPU; }
  DType dtype_kind() const { return dtype == "bfloat16" ? DType::BF16 : DType::F32; }
  // Sets device, dtype, cuda_graphs, lora_overlap, mem_fraction and kv_cache_tokens of `o` (the last two keep ExecutorOptions'
  // defaults when their flags were not offered).
  void apply(ExecutorOptions& o) const;
};

// Adds --device, --dtype, --cuda-graphs and --lora-overlap; with `memory_flags` also --kv-cache-tokens and --mem-fraction (bench
// sizes its KV cache per workload and leaves them out).
void add_device_options(CLI::App& app, DeviceOptions& o, bool memory_flags = true);

}  // namespace hylora::cli
