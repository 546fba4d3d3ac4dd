#pragma once
// WeightSource: where a model factory gets its weights from, by *canonical* name (the HF module names of the
// ForCausalLM class, e.g. "model.layers.3.self_attn.q_proj.weight"). Two sources exist: the checkpoint on disk
// (WeightLoader, io/weight_loader.h) and seeded random values of the right shapes (RandomWeights,
// io/random_weights.h) for `hylora bench`, which needs real model shapes but no checkpoint. Model files ask for the
// tensors their config describes and never know which source answers.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace hylora {

// A contiguous block [begin, begin + size) of one dimension of a stored tensor.
struct Span {
  int64_t begin = 0, size = 0;
};
// `keep`, or (empty: keep everything) the one span [0, n).
inline std::vector<Span> spans_or_all(const std::vector<Span>& keep, int64_t n) {
  return keep.empty() ? std::vector<Span>{{0, n}} : keep;
}
// Elements the spans cover.
inline int64_t spans_total(const std::vector<Span>& spans) {
  int64_t n = 0;
  for (const Span& s : spans) n += s.size;
  return n;
}

class WeightSource {
 public:
  virtual ~WeightSource() = default;

  // Whether the source holds `name` (a checkpoint: stored under some spelling; random weights: always, since a
  // random model holds what its config describes).
  virtual bool has(const std::string& name) const = 0;
  // float32 host tensor of exactly `expected` shape (a checkpoint checks the stored shape and names both on error).
  virtual Tensor get(const std::string& name, const Shape& expected) = 0;
  // Same, or an undefined Tensor when absent. Random weights: always absent (models ask for optional tensors only
  // to accept a stored copy they then ignore, e.g. lm_head.weight under tied embeddings; nothing is generated).
  virtual Tensor get_optional(const std::string& name, const Shape& expected) = 0;
  // MoE expert weights as one [E, rows, cols] tensor: a checkpoint reads the fused `<prefix>.<fused>` tensor or
  // stacks the per-expert `<prefix>.{e}.<part>.weight` tensors (parts concatenated along rows).
  virtual Tensor experts(const std::string& prefix, const std::string& fused, const std::vector<std::string>& parts,
                         const Shape& expected) = 0;
  // A tensor-parallel rank's shard (dist/shard_weight_source.h, docs/multi_gpu.md §6.1): the rows `keep_rows` ×
  // columns `keep_cols` (empty = all) of `name` viewed as [rows, cols], where `as` is the shape get() would check
  // (rows · cols elements), as one contiguous float32 [Σ kept rows, Σ kept cols]. The default reads the whole tensor
  // with get() and cuts it; a checkpoint converts only the kept elements from the file, so a rank reads ~1/N.
  virtual Tensor get_block(const std::string& name, const Shape& as, int64_t rows, int64_t cols,
                           const std::vector<Span>& keep_rows, const std::vector<Span>& keep_cols);
  // The same for experts() ([E, out, in] = `full`): experts `keep_experts`, inside each the kept rows and columns,
  // as [E_kept, Σ rows, Σ cols]. Every expert's tensors still count as used (require_all_used).
  virtual Tensor experts_block(const std::string& prefix, const std::string& fused,
                               const std::vector<std::string>& parts, const Shape& full, Span keep_experts,
                               const std::vector<Span>& keep_rows, const std::vector<Span>& keep_cols);
  // Bytes of stored tensor data read so far (a checkpoint: the elements converted, at their stored size; random
  // weights: 0). What a rank's load cost in reads; the test of per-rank reading counts it.
  virtual int64_t bytes_read() const { return 0; }
  // Fails when the source holds tensors nobody asked for (a checkpoint for another config); `arch` names the
  // architecture in the message. Random weights hold nothing extra.
  virtual void require_all_used(const std::string& arch) const = 0;
  // For messages: the checkpoint directory, or "random weights (seed N)".
  virtual std::string where() const = 0;
};

// Where a model's weights come from: a checkpoint directory, or seeded random values (no directory).
struct WeightOrigin {
  std::string checkpoint_dir;  // used when !random
  bool random = false;
  uint64_t seed = 0;
  // Tensor parallel: wraps the opened source so that a rank's model gets only its shard of each tensor
  // (dist/shard_weight_source.h). Empty on one rank.
  std::function<std::unique_ptr<WeightSource>(std::unique_ptr<WeightSource>)> wrap;

  static WeightOrigin checkpoint(std::string dir) { return {std::move(dir), false, 0, {}}; }
  static WeightOrigin random_weights(uint64_t seed) { return {"", true, seed, {}}; }
};

// How a model names its weights and what their neutral values are, for open_weights():
struct WeightNaming {
  // Stored name -> canonical name, or nothing for tensors the engine does not serve (checkpoints only).
  std::function<std::optional<std::string>(const std::string&)> rename;
  // Random weights only: true for the RMSNorm weights applied as (1 + w), whose neutral value is 0 (the others'
  // is 1). Null = every norm is plain.
  std::function<bool(const std::string&)> one_plus_norm;
};

// Copies the blocks of t ([G, R, C]; a 2-D t is G = 1) — groups × rows × cols, empty = all — into a new contiguous
// float32 tensor [Σ groups, Σ rows, Σ cols] (2-D when t is): the host cut behind get_block's default.
Tensor cut_blocks(const Tensor& t, const std::vector<Span>& groups, const std::vector<Span>& rows,
                  const std::vector<Span>& cols);

// The checkpoint of origin.checkpoint_dir (its safetensors read through `naming.rename`) or random weights.
std::unique_ptr<WeightSource> open_weights(const WeightOrigin& origin, const WeightNaming& naming);

}  // namespace hylora
