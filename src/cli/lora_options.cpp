#include "cli/lora_options.h"

#include <cstdio>

#include "lora/normalized_adapter.h"

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

AdapterSet load_adapters(const Executor& executor, const LoraOptions& o) {
  AdapterSet set;
  for (auto& spec : o.adapters) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      fail("--lora ", spec, ": expected NAME=ADAPTER_DIR");
    const std::string name = spec.substr(0, eq), dir = spec.substr(eq + 1);
    if (set.count(name))
      fail("adapter \"", name, "\": the name is already loaded (from ", set.at(name)->dir,
           "); each adapter needs a distinct name");
    auto a = executor.load_adapter(name, dir);
    for (auto& w : a->warnings) std::fprintf(stderr, "hylora: warning: %s\n", w.c_str());
    set[name] = std::move(a);
  }
  return set;
}

}  // namespace hylora::cli
