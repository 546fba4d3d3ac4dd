#pragma once
// Building the projections every model file declares: plain and row-fused Linears with their LoRA slices.
#include <string>
#include <vector>

#include "io/weight_source.h"
#include "models/linear.h"

namespace hylora {

// One HF linear inside a fused projection: its PEFT module path, its output rows, whether it has a bias.
struct FusedPart {
  std::string module;
  int64_t rows;
  bool bias = false;
};

// Row-concatenation of HF linears that read the same input (weight [Σ rows, in]), one LoRA slice per part, in
// `parts` order. Parts without a bias get zeros when another part has one.
Linear load_fused(WeightSource& w, const std::string& name, const std::vector<FusedPart>& parts, int64_t in);

// A projection with one LoRA slice covering all its outputs, named after its PEFT module. weight [out, in].
Linear load_linear(WeightSource& w, const std::string& module, int64_t out, int64_t in, bool bias);

}  // namespace hylora
