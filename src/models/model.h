#pragma once
// Model: one architecture's layer stack over the ops interface. One file per architecture (qwen3_5.cpp,
// nemotron_h.cpp, deepseek_v3.cpp); each declares its projections as Linear / ExpertLinear with their LoRA slices
// (lora.md §2) and registers them in `lora_targets_`, which is all the LoRA code needs to know about a model.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/config.h"
#include "io/weight_source.h"
#include "kv/cache_spec.h"
#include "models/forward_args.h"
#include "models/linear.h"

namespace hylora {

// Every module of a model that can take LoRA, for lora/ to map PEFT keys onto.
struct LoraTargets {
  std::vector<Linear*> linears;        // includes lm_head and routers (mlp.gate.weight as a 1-slice Linear)
  std::vector<ExpertLinear*> experts;  // fused per-expert projections
  Embedding* embedding = nullptr;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string architecture() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t hidden_size() const = 0;
  virtual int64_t num_layers() const = 0;
  // Longest sequence the checkpoint's config allows (config.json max_position_embeddings; 0 = not stated).
  int64_t max_position_embeddings() const { return max_position_embeddings_; }
  void set_max_position_embeddings(int64_t n) { max_position_embeddings_ = n; }

  // What each layer keeps between steps (one entry per layer), for the engine's cache pools.
  virtual std::vector<LayerCacheSpec> cache_specs() const = 0;

  // Runs one step over the packed rows of a.step, reading and extending the caches through the step's page tables
  // and state slots, and writes logits [R, vocab] of the step's logit rows (R = a.step.logit_rows).
  virtual void forward(const ForwardArgs& a, Tensor& logits) = 0;

  const LoraTargets& lora_targets() const { return lora_targets_; }
  // Calls f on every weight tensor of the model (undefined ones included: f skips them), so the engine can place
  // the weights on the compute device without knowing the architecture's layout. A model that does not list its
  // weights (synthetic test models) runs on the CPU only.
  virtual void for_each_weight(const std::function<void(Tensor&)>& f) { (void)f; fail(architecture(), ": this model cannot be moved to a device"); }

  // The prefixes a PEFT adapter may put before the module paths of lora_targets() (after "base_model.model."),
  // mapped to "model." (e.g. "model.language_model." for Qwen3.5 vision-language checkpoints, "backbone." for
  // Nemotron-H), and the prefixes of modules the engine does not serve (skipped with a warning).
  virtual std::vector<std::pair<std::string, std::string>> adapter_prefix_aliases() const { return {}; }
  virtual std::vector<std::string> unserved_prefixes() const { return {}; }

 protected:
  static void visit(const std::function<void(Tensor&)>& f, Linear& l) {
    f(l.weight);
    f(l.bias);
  }
  // Registration, once the model's layers are final (the table keeps pointers into them): each target's lora_id is
  // its index in its list. Undefined (absent) projections are skipped.
  void add_lora_target(Linear& l) {
    if (!l.weight.defined()) return;
    l.lora_id = static_cast<int>(lora_targets_.linears.size());
    lora_targets_.linears.push_back(&l);
  }
  void add_lora_target(ExpertLinear& l) {
    l.lora_id = static_cast<int>(lora_targets_.experts.size());
    lora_targets_.experts.push_back(&l);
  }
  void set_lora_embedding(Embedding& e) {
    e.lora_id = 0;
    lora_targets_.embedding = &e;
  }

  LoraTargets lora_targets_;
  int64_t max_position_embeddings_ = 0;
};

// Reads <dir>/config.json, picks the architecture (refusing unknown ones with the supported list), loads weights.
std::unique_ptr<Model> load_model(const std::string& dir);
// The same from a parsed config (`config_path` names it in messages) with weights from `origin`: load_model() is
// make_model(config, <dir>/config.json, checkpoint(dir)); `hylora bench --random-weights` passes random weights.
std::unique_ptr<Model> make_model(const json& config, const std::string& config_path, const WeightOrigin& origin);

// The architectures and model_types load_model accepts, for messages and --help.
std::string supported_architectures();

}  // namespace hylora

