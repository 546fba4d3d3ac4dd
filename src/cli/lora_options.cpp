#include "cli/lora_options.h"

#include "lora/lora_manager.h"

namespace hylora::cli {

void add_lora_options(CLI::App& app, LoraOptions& o) {
  app.add_option("--lora", o.adapters, "adapter NAME=ADAPTER_DIR (PEFT format); repeat for several");
  // Upper bounds: slot buffers are sized rank × slots × every module at start-up, so a typo must not become an
  // allocation of terabytes (or a bare std::bad_alloc).
  app.add_option("--max-lora-rank", o.max_lora_rank, "largest adapter rank accepted")
      ->check(CLI::Range(int64_t{1}, kMaxLoraRankLimit));
  app.add_option("--max-loras-per-batch", o.max_loras_per_batch, "adapter slots (distinct adapters per step)")
      ->check(CLI::Range(int64_t{1}, kMaxLorasPerBatchLimit));
}

std::unique_ptr<LoraStepBinder> make_lora_binder(Model& model, const LoraOptions& o) {
  if (o.adapters.empty()) return nullptr;
  auto m = std::make_unique<lora::LoraManager>(model, o.max_lora_rank, o.max_loras_per_batch);
  for (auto& spec : o.adapters) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      fail("--lora ", spec, ": expected NAME=ADAPTER_DIR");
    m->load(spec.substr(0, eq), spec.substr(eq + 1));
  }
  return m;
}

}  // namespace hylora::cli
