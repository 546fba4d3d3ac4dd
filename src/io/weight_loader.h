#pragma once
// WeightLoader: reads a checkpoint by *canonical* names (the HF module names of the ForCausalLM class, e.g.
// "model.layers.3.self_attn.q_proj.weight"), whatever spelling the file uses. The model supplies `rename`, which maps
// a stored name to its canonical name (e.g. "backbone." -> "model.", "model.language_model." -> "model.") or to
// nothing for tensors the engine does not serve (vision tower, MTP head). The checkpoint WeightSource.
#include <functional>
#include <optional>
#include <set>
#include <string>

#include "core/tensor.h"
#include "io/safetensors.h"
#include "io/weight_source.h"

namespace hylora {

class WeightLoader : public WeightSource {
 public:
  using Rename = std::function<std::optional<std::string>(const std::string&)>;
  WeightLoader(Checkpoint ckpt, const Rename& rename);

  bool has(const std::string& name) const override { return by_name_.count(name) != 0; }
  // float32 copy, checked against `expected` (error names the tensor, the file and both shapes).
  Tensor get(const std::string& name, const Shape& expected) override;
  // Same, or an undefined Tensor when absent.
  Tensor get_optional(const std::string& name, const Shape& expected) override;

  // MoE expert weights as one [E, rows, cols] tensor, from either the fused tensor `<prefix>.<fused>`
  // ([E, rows, cols]) or per-expert tensors `<prefix>.{e}.<part>.weight` stacked along dim 0 and, when several parts
  // are given, concatenated along rows (e.g. parts {"gate_proj","up_proj"} -> gate_up [E, 2I, H]).
  Tensor experts(const std::string& prefix, const std::string& fused, const std::vector<std::string>& parts,
                 const Shape& expected) override;

  // A rank's rows × columns converted straight from the file (WeightSource::get_block); the rest is not read.
  Tensor get_block(const std::string& name, const Shape& as, int64_t rows, int64_t cols,
                   const std::vector<Span>& keep_rows, const std::vector<Span>& keep_cols) override;
  // A rank's experts and rows × columns inside each, from the fused tensor or only the kept experts' per-expert
  // tensors (every expert's tensors must exist and count as used).
  Tensor experts_block(const std::string& prefix, const std::string& fused, const std::vector<std::string>& parts,
                       const Shape& full, Span keep_experts, const std::vector<Span>& keep_rows,
                       const std::vector<Span>& keep_cols) override;
  int64_t bytes_read() const override { return bytes_read_; }

  // Stored names (canonical) that no get() asked for.
  std::vector<std::string> unused() const;
  // Fails when some stored tensor was never asked for: a checkpoint with weights the config does not describe is
  // the wrong checkpoint for this config, not something to ignore. `arch` names the architecture in the message.
  void require_all_used(const std::string& arch) const override;
  std::string where() const override { return ckpt_.where(); }
  size_t skipped() const { return skipped_; }

 private:
  Checkpoint ckpt_;
  std::map<std::string, std::string> by_name_;  // canonical -> stored name
  std::set<std::string> used_;
  size_t skipped_ = 0;
  int64_t bytes_read_ = 0;
  // The stored tensor of canonical `name`, its shape checked against `expected` as get() does; marks it used.
  const TensorInfo& checked(const std::string& name, const Shape& expected);
  // The per-expert tensor name of expert e, part p (the unfused layout), failing when absent.
  std::string expert_part(const std::string& prefix, const std::string& fused, int64_t e, const std::string& part) const;
};

}  // namespace hylora
