#pragma once
// The LoRA flags shared by score (and later serve/generate), and the binder that serves them.
#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

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

// Loads and validates every --lora adapter; null when none was given.
std::unique_ptr<LoraStepBinder> make_lora_binder(Model& model, const LoraOptions& o);

}  // namespace hylora::cli
