#pragma once
// ForwardBatch: everything one forward step needs, passed explicitly (no global context).
// Tokens of all sequences are packed row after row ("varlen"): sequence s owns rows
// [seqs[s].row_begin, seqs[s].row_begin + seqs[s].n_tokens). A prefill, a chunk of a prefill and a decode step are
// the same thing: n_tokens new tokens appended after past_len cached ones.
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "engine/sequence_cache.h"

namespace hylora {

struct Linear;
struct ExpertLinear;
struct Embedding;

// Applies the LoRA deltas of one step; implemented by lora/ (multi-LoRA batch metadata). A null applier, or a
// batch whose rows are all base-model rows, costs nothing.
class LoraApplier {
 public:
  virtual ~LoraApplier() = default;
  // y[N, out] += Σ_slices s·(x A_sliceᵀ) B_sliceᵀ for the rows bound to an adapter.
  virtual void apply_linear(const Linear& lin, const Tensor& x, Tensor& y) const = 0;
  // One expert's projection over some tokens: y[m, out] += delta of expert `expert` for rows `token_rows` (indices
  // into the batch) whose input is x[m, in].
  virtual void apply_expert(const ExpertLinear& lin, int64_t expert, const std::vector<int64_t>& token_rows,
                            const Tensor& x, Tensor& y) const = 0;
  // Embedding LoRA: y[N, H] += s · A[:, ids]ᵀ Bᵀ for the rows bound to an adapter (ids = batch tokens).
  virtual void apply_embedding(const Embedding& emb, const std::vector<int32_t>& ids, Tensor& y) const = 0;
};

struct SeqSpan {
  int64_t row_begin = 0;
  int64_t n_tokens = 0;
  int64_t past_len = 0;          // tokens already in the cache before this step
  SequenceCache* cache = nullptr;
};

struct ForwardBatch {
  std::vector<int32_t> tokens;     // [N]
  std::vector<int64_t> positions;  // [N] absolute position of each token in its sequence
  std::vector<SeqSpan> seqs;
  const LoraApplier* lora = nullptr;

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
};

}  // namespace hylora
