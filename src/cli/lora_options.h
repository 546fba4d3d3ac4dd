#pragma once
// The LoRA flags shared by score (and serve), and loading the adapters they name into an executor.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "engine/executor.h"
#include "engine/scorer.h"

namespace hylora::cli {

inline constexpr int64_t kMaxLoraRankLimit = 4096;
inline constexpr int64_t kMaxLorasPerBatchLimit = 1024;

struct LoraOptions {
  std::vector<std::string> adapters;  // NAME=DIR
  int64_t max_lora_rank = 64;
  int64_t max_loras_per_batch = 8;
};

void add_lora_options(CLI::App& app, LoraOptions& o);

// Loads and validates every --lora adapter (warnings to stderr); refuses an empty or duplicate name.
AdapterSet load_adapters(const Executor& executor, const LoraOptions& o);

}  // namespace hylora::cli
