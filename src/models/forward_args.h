#pragma once
// What a model's forward pass receives: the execution context, the step (as tensors), the per-layer caches and the
// adapter slots. Passed explicitly to every layer function; there is no global context.
#include <vector>

#include "batch/step_batch.h"
#include "core/exec_ctx.h"
#include "kv/cache_spec.h"
#include "models/lora_weights.h"

namespace hylora {

namespace dist {
class Communicator;
}

struct ForwardArgs {
  ExecCtx& ctx;
  const StepTensors& step;
  std::vector<LayerCache>& caches;  // [layers]
  const LoraWeights* lora = nullptr;  // null when no adapter can be active
  // The tensor-parallel group of a rank's shard model (docs/multi_gpu.md §4), or null on one rank: projections
  // whose TpRole is not kLocal and vocabulary-split embeddings talk through it, nothing else.
  dist::Communicator* comm = nullptr;

  // True when some row of the step is bound to an adapter.
  bool lora_active() const { return lora && !step.lora.empty(); }
  // An uninitialised scratch tensor valid for this step.
  Tensor tmp(Shape shape, DType dtype = DType::F32) const { return ctx.scratch.tensor(std::move(shape), dtype); }
};

}  // namespace hylora
