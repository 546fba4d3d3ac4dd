#pragma once
// Loads a PEFT adapter directory onto a model's declared LoRA targets (lora.md §2, models.md §4): every spelling
// of the same slices is mapped by name through one generic table built from Model::lora_targets(); nothing here
// knows which architecture it serves.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lora/normalized_adapter.h"
#include "models/model.h"

namespace hylora::lora {

// The shapes an adapter is validated against, per LoRA target (indexed like LoraTargets): the model's own, or — on a
// tensor-parallel rank, whose model holds only its shard — the whole model's (dist::whole_target_shapes), so that a
// rank reads the same PEFT files as one GPU would and then keeps its part (lora/shard_adapter.h).
struct TargetShapes {
  struct Slice {
    int64_t offset = 0, size = 0;  // output rows [offset, offset + size) of the fused weight
  };
  struct Target {
    int64_t in = 0, out = 0;
    int64_t experts = 1;  // expert targets: E
    std::vector<Slice> slices;
  };
  std::vector<Target> linears, experts;
  int64_t vocab = 0, hidden = 0;  // the embedding table [vocab, hidden] (0 without one)
  static TargetShapes of(const LoraTargets& targets);
};

// Where PEFT module paths land in the model: built once per model from its LoRA target declarations.
class TargetIndex {
 public:
  explicit TargetIndex(const Model& model);
  // A tensor-parallel rank's shard model validated against the whole model's `whole` shapes. Its weights are only a
  // shard, so a full replacement weight (modules_to_save) is kept whole (NormalizedAdapter::deltas_are_replacements)
  // and turned into W' − W per rank once cut (lora::shard_adapter).
  TargetIndex(const Model& model, TargetShapes whole);

  struct SliceRef {
    int32_t target;
    int32_t slice;
  };
  const Model& model() const { return model_; }
  const LoraTargets& targets() const { return model_.lora_targets(); }
  const TargetShapes& shapes() const { return shapes_; }
  // False on a shard model (the weights are not the whole ones a replacement is compared with).
  bool holds_whole_weights() const { return whole_weights_; }

  // Linear slice by PEFT module path ("model.layers.3.self_attn.q_proj", "model.layers.0.mlp.gate", "lm_head").
  const SliceRef* linear_slice(const std::string& module) const;
  // Expert slice by per-expert module name without the expert index ("model.layers.1.mlp.experts.gate_proj").
  const SliceRef* expert_slice(const std::string& module) const;
  // ExpertLinear targets owned by a module ("model.layers.1.mlp.experts"), in parameter registration order.
  const std::vector<int32_t>* experts_of(const std::string& owner) const;

 private:
  const Model& model_;
  TargetShapes shapes_;
  bool whole_weights_ = true;
  std::map<std::string, SliceRef> linear_slices_;
  std::map<std::string, SliceRef> expert_slices_;
  std::map<std::string, std::vector<int32_t>> experts_by_owner_;
};

// Reads `<dir>/adapter_config.json` + `<dir>/adapter_model.safetensors` and normalises them. Every refusal of
// lora.md §6 is an Error naming the adapter, the tensor or field, what was expected and what was found.
std::shared_ptr<NormalizedAdapter> load_adapter(const std::string& name, const std::string& dir,
                                                const TargetIndex& index, int64_t max_lora_rank);

}  // namespace hylora::lora
