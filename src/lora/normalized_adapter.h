#pragma once
// An adapter after parsing, validation and normalisation (lora.md §3): whatever spelling it came in, it is a set of
// (target, slice) factors in the model's own terms, with the PEFT scaling already folded into B. Several keys that
// land on one slice (in_proj_q/k/v onto in_proj_qkv) are stacked along the rank with a block-structured B.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace hylora::lora {

// LoRA factors of one slice of one target.
struct NormalizedSlice {
  int32_t target = -1;  // index into LoraTargets::linears (or ::experts); unused for the embedding
  int32_t slice = 0;    // index into the target's slices
  int64_t rank = 0;     // true rank (the pool pads to max_r with zeros)
  Tensor A;             // Linear [rank, in]; experts [E, rank, in]; embedding [rank, vocab]
  Tensor B;             // Linear [out_size, rank]; experts [E, out_size, rank]; embedding [H, rank]; × scaling
};

// A full replacement weight (modules_to_save, or a differing saved base_layer copy), kept as W' − W so that it
// applies to that adapter's rows only.
struct DenseDelta {
  int32_t target = -1;
  int32_t slice = 0;
  Tensor delta;  // [out_size, in]
};

struct NormalizedAdapter {
  std::string name;
  std::string dir;
  std::vector<NormalizedSlice> linears;
  std::vector<NormalizedSlice> experts;
  std::vector<NormalizedSlice> embedding;  // zero or one entry
  std::vector<DenseDelta> linear_deltas;
  Tensor embedding_delta;                  // [V, H] E' − E, or undefined
  // Loaded on a tensor-parallel rank against the whole shapes (TargetIndex(model, whole)): linear_deltas and
  // embedding_delta hold the replacement W' itself, every one the adapter has (even one equal to the base), until
  // lora::shard_adapter cuts them and subtracts the rank's base shard.
  bool deltas_are_replacements = false;
  std::vector<std::string> warnings;       // e.g. how many vision-tower tensors were skipped

  int64_t max_rank() const {
    int64_t r = 0;
    for (auto* v : {&linears, &experts, &embedding})
      for (auto& s : *v) r = std::max(r, s.rank);
    return r;
  }
};

}  // namespace hylora::lora
