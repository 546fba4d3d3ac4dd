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

// Where PEFT module paths land in the model: built once per model from its LoRA target declarations.
class TargetIndex {
 public:
  explicit TargetIndex(const Model& model);

  struct SliceRef {
    int32_t target;
    int32_t slice;
  };
  const Model& model() const { return model_; }
  const LoraTargets& targets() const { return model_.lora_targets(); }

  // Linear slice by PEFT module path ("model.layers.3.self_attn.q_proj", "model.layers.0.mlp.gate", "lm_head").
  const SliceRef* linear_slice(const std::string& module) const;
  // Expert slice by per-expert module name without the expert index ("model.layers.1.mlp.experts.gate_proj").
  const SliceRef* expert_slice(const std::string& module) const;
  // ExpertLinear targets owned by a module ("model.layers.1.mlp.experts"), in parameter registration order.
  const std::vector<int32_t>* experts_of(const std::string& owner) const;

 private:
  const Model& model_;
  std::map<std::string, SliceRef> linear_slices_;
  std::map<std::string, SliceRef> expert_slices_;
  std::map<std::string, std::vector<int32_t>> experts_by_owner_;
};

// Reads `<dir>/adapter_config.json` + `<dir>/adapter_model.safetensors` and normalises them. Every refusal of
// lora.md §6 is an Error naming the adapter, the tensor or field, what was expected and what was found.
std::shared_ptr<NormalizedAdapter> load_adapter(const std::string& name, const std::string& dir,
                                                const TargetIndex& index, int64_t max_lora_rank);

}  // namespace hylora::lora
