#include "cli/bench_adapters.h"

#include <cmath>

#include "io/random_weights.h"

namespace hylora::cli {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

bool bench_adapts(const Linear& l) {
  // Routers (mlp.gate, Qwen's 1-row shared_expert_gate) and the output layer are not adapted (see the header).
  return l.name != "lm_head" && !ends_with(l.name, ".gate") && !ends_with(l.name, "shared_expert_gate");
}

std::shared_ptr<const lora::NormalizedAdapter> random_adapter(const Model& model, const std::string& name,
                                                              int64_t rank, uint64_t seed) {
  auto a = std::make_shared<lora::NormalizedAdapter>();
  a->name = name;
  a->dir = "(random, rank " + std::to_string(rank) + ")";
  const float scaling = 2.0f;  // lora_alpha / r with lora_alpha = 2r
  for (const Linear* l : model.lora_targets().linears) {
    if (!bench_adapts(*l)) continue;
    const int64_t in = l->in_features();
    for (size_t s = 0; s < l->slices.size(); ++s) {
      lora::NormalizedSlice ns;
      ns.target = l->lora_id;
      ns.slice = static_cast<int32_t>(s);
      ns.rank = rank;
      const std::string key = l->slices[s].module;
      ns.A = random_normal({rank, in}, seed, key + ".A", 1.0f / std::sqrt(static_cast<float>(in)));  // [r, in]
      ns.B = random_normal({l->slices[s].out_size, rank}, seed, key + ".B", 0.01f * scaling);  // [out_slice, r]
      a->linears.push_back(std::move(ns));
    }
  }
  return a;
}

}  // namespace hylora::cli
