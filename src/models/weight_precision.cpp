#include "models/weight_precision.h"

namespace hylora {

std::vector<Tensor*> compute_dtype_weights(Model& model) {
  // Every projection of a model is a LoRA target (lora.md §2), so the target table lists every big matrix.
  const LoraTargets& t = model.lora_targets();
  std::vector<Tensor*> out;
  for (Linear* l : t.linears)
    if (!l->full_precision) out.push_back(&l->weight);
  for (ExpertLinear* e : t.experts) out.push_back(&e->weight);
  if (t.embedding) out.push_back(&t.embedding->table);
  return out;
}

}  // namespace hylora
