#pragma once
// Random LoRA adapters for `hylora bench`, built already normalised (lora.md §3) for the loaded model: rank r on
// every projection of the decoder layers (attention / GDN / Mamba2 mixers, dense MLPs, shared experts), as a PEFT
// adapter with target_modules = every linear and lora_alpha = 2r would give. Not on lm_head, the embedding, the
// routers or the routed experts: PEFT's "all-linear" skips the output layer, and the HF peer (bench/hf_peer.py)
// cannot put LoRA on transformers' fused expert parameters the same way, so both sides adapt the same modules.
#include <cstdint>
#include <memory>
#include <string>

#include "lora/normalized_adapter.h"
#include "models/model.h"

namespace hylora::cli {

// Adapter `name`: A ~ N(0, 1/in), B ~ N(0, 0.01²) times the PEFT scaling alpha/r = 2 (B nonzero, unlike a fresh
// PEFT adapter, so the LoRA path really computes). Deterministic for (seed, target order).
std::shared_ptr<const lora::NormalizedAdapter> random_adapter(const Model& model, const std::string& name,
                                                              int64_t rank, uint64_t seed);

// Whether random_adapter() puts LoRA on this projection.
bool bench_adapts(const Linear& l);

}  // namespace hylora::cli
