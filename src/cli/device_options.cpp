#include "cli/device_options.h"

namespace hylora::cli {

void add_device_options(CLI::App& app, DeviceOptions& o, bool memory_flags) {
  app.add_option("--device", o.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--dtype", o.dtype, "float32 or bfloat16")->check(CLI::IsMember({"float32", "bfloat16"}));
  app.add_option("--cuda-graphs", o.cuda_graphs,
                 "GPU: replay decode steps as captured CUDA graphs per batch-size bucket (off: every step eager)")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--lora-overlap", o.lora_overlap,
                 "GPU: run each LoRA shrink on a second stream beside its projection's base GEMM (same results)")
      ->check(CLI::IsMember({"on", "off"}));
  if (!memory_flags) return;
  // Upper bound: 2^32 tokens is far past any cache, so a typo is refused here rather than as a huge allocation.
  app.add_option("--kv-cache-tokens", o.kv_cache_tokens,
                 "KV cache capacity in tokens (0 = 65536 on the CPU, what --mem-fraction leaves on the GPU)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 32));
  app.add_option("--mem-fraction", o.mem_fraction,
                 "GPU: share of the device's memory to use for weights, slots, scratch and KV pages")
      ->check(CLI::Range(1e-6, 1.0));
}

void DeviceOptions::apply(ExecutorOptions& o) const {
  o.device = device_kind();
  o.dtype = dtype_kind();
  o.cuda_graphs = cuda_graphs == "on" ? CudaGraphs::kDecode : CudaGraphs::kOff;
  o.lora_overlap = lora_overlap == "on";
  o.mem_fraction = mem_fraction;
  o.kv_cache_tokens = kv_cache_tokens;
}

}  // namespace hylora::cli
