#pragma once
// The LoraApplier of one step: every projection of every model goes through the same shrink/expand ops over the
// pool's slot buffers, whatever its number of slices; expert projections do the same over an expert's tokens.
#include "engine/forward_batch.h"
#include "lora/lora_batch.h"
#include "lora/lora_pool.h"

namespace hylora::lora {

class MultiLoraApplier : public LoraApplier {
 public:
  MultiLoraApplier(const LoraPool& pool, LoraBatch batch) : pool_(pool), batch_(std::move(batch)) {}

  void apply_linear(const Linear& lin, const Tensor& x, Tensor& y) const override;
  void apply_expert(const ExpertLinear& lin, int64_t expert, const std::vector<int64_t>& token_rows, const Tensor& x,
                    Tensor& y) const override;
  void apply_embedding(const Embedding& emb, const std::vector<int32_t>& ids, Tensor& y) const override;

  const LoraBatch& batch() const { return batch_; }

 private:
  const LoraPool& pool_;
  LoraBatch batch_;
};

}  // namespace hylora::lora
