#include "cli/lora_options.h"

namespace hylora::cli {

void add_lora_options(CLI::App& app, LoraOptions& o) {
  app.add_option("--lora", o.adapters, "adapter NAME=ADAPTER_DIR (PEFT format); repeat for several");
  app.add_option("--max-lora-rank", o.max_lora_rank, "largest adapter rank accepted")->check(CLI::PositiveNumber);
  app.add_option("--max-loras-per-batch", o.max_loras_per_batch, "adapter slots (distinct adapters per step)")
      ->check(CLI::PositiveNumber);
}

std::unique_ptr<LoraStepBinder> make_lora_binder(Model&, const LoraOptions& o) {
  if (!o.adapters.empty())
    fail("--lora: serving adapters is not implemented yet in this build (requests must use \"lora\": null)");
  return nullptr;
}

}  // namespace hylora::cli
