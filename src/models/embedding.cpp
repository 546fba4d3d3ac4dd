#include "models/model.h"
#include "ops/elementwise.h"

namespace hylora::ops {

Tensor embed(const Embedding& emb, const ForwardBatch& batch) {
  Tensor x = embedding(emb.table, batch.tokens);
  if (batch.lora && emb.lora_id >= 0) batch.lora->apply_embedding(emb, batch.tokens, x);
  return x;
}

}  // namespace hylora::ops
