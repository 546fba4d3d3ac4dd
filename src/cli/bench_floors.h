#pragma once
// The work a step must do, by docs/performance.md "The floor": bytes that must cross HBM once and FLOP, from the
// loaded model's weights and cache layout and the step's shape. `hylora bench` divides them by the copy bandwidth
// and GEMM rate it measured to get the step's floors.
#include <cstdint>
#include <string>
#include <vector>

#include "io/config.h"
#include "models/model.h"

namespace hylora::cli {

// One step: `seqs` sequences, each with `context` cached tokens, appending `new_tokens` tokens; logits for its last
// row. `adapters` distinct adapters of rank `rank` spread over the sequences (0 = base model only).
struct StepShape {
  int64_t seqs = 1;
  int64_t context = 0;
  int64_t new_tokens = 1;
  int64_t adapters = 0;
  int64_t rank = 0;
};

struct StepCost {
  double weight_bytes = 0;   // dense weights + routed experts touched + lm_head + embedding rows
  double lora_bytes = 0;     // A/B of the adapters used, at their true rank
  double cache_bytes = 0;    // KV / latent read + new rows written; recurrent states read + written
  double io_bytes = 0;       // activations that must leave the chip (prefill residual stream) + the logits written
  double base_flop = 0;      // projections, experts over routed rows, attention, state updates
  double lora_flop = 0;      // shrink + expand
  double bytes() const { return weight_bytes + lora_bytes + cache_bytes + io_bytes; }
  double flop() const { return base_flop + lora_flop; }
};

// What the cost model needs beyond the Model: from config.json (text_config for vision-language configs).
struct CostModel {
  // `weight_dtype_bytes`: bytes per weight / KV element in the compute dtype (4 float32, 2 bfloat16); recurrent
  // states are float32 whatever the compute dtype.
  CostModel(Model& model, const json& config, double weight_dtype_bytes);

  StepCost cost(const StepShape& s) const;
  // Experts some row is routed to, expected under uniform routing: E·(1 − (1 − k/E)^rows) (batch 1: exactly k).
  double experts_touched(int64_t rows) const;

  double total_weight_bytes = 0;  // every weight once (the model's size in the compute dtype)
  double wb = 4;

 private:
  struct Dense {
    double numel;  // [out, in] elements
  };
  struct Experts {
    double numel;  // [E, out, in] elements
    int64_t E;
  };
  std::vector<Dense> dense_;        // 2-D weights except the embedding table and lm_head (conv kernels included)
  std::vector<Experts> experts_;
  double other_numel_ = 0;          // 1-D weights (norms, biases, A, D, dt_bias): read once per step
  double lm_head_numel_ = 0, hidden_ = 0, vocab_ = 0;
  bool embedding_is_lm_head_ = false;
  int64_t top_k_ = 0;
  std::vector<LayerCacheSpec> specs_;
  int64_t heads_ = 0;                         // attention query heads
  int64_t mla_nope_ = 0, mla_rope_ = 0, mla_v_ = 0, mla_ckv_ = 0;
  double lora_in_out_ = 0;                    // Σ (in + out_slice) over the adapted slices: LoRA elements per rank
};

}  // namespace hylora::cli
