#pragma once
// CudaGraphRunner: decode steps replayed as captured CUDA graphs, one graph per GraphShape (batch/graph_padding.h:
// bucket rows, page-table width, LoRA on/off). The launch overhead of a decode step (hundreds of small kernels, see
// docs/performance.md) is paid once per shape instead of once per step.
//
// The executor pads the step to its shape and hands the runner two callbacks:
//   stage()   resets the scratch arena, uploads the padded StepBatch into it (the arena's first tensor) and takes the
//             logits tensor: for one shape the same sequence of scratch requests, so the same addresses while the
//             arena's block stays where it is;
//   forward() queues Model::forward over those tensors.
// Per shape: the first step runs eagerly (it grows the arena to the shape's size and does every one-time setup:
// cuBLASLt heuristics, kernel attributes, RoPE constants); the second is captured (nothing runs while recording) and
// replayed; later steps only upload their arrays and replay. A capture that fails (an op synchronised or allocated
// while recording) runs that step eagerly and marks the shape eager for good; one that outgrew the arena is dropped
// (the next step of the shape captures again). When the arena's block moves, every graph is dropped: they hold its
// old addresses.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "batch/graph_padding.h"
#include "core/exec_ctx.h"

namespace hylora {

// The four graph calls of ops/device.h, behind an interface so that the runner's bookkeeping is tested on the CPU.
class GraphBackend {
 public:
  virtual ~GraphBackend() = default;
  virtual void begin(ExecCtx& ctx) = 0;
  virtual std::shared_ptr<void> end(ExecCtx& ctx) = 0;  // null: the capture failed
  virtual void abort(ExecCtx& ctx) = 0;
  virtual void replay(ExecCtx& ctx, const std::shared_ptr<void>& graph) = 0;
};
// The CUDA one (ops::graph_capture_begin/end/abort, ops::graph_replay).
GraphBackend& cuda_graph_backend();

class CudaGraphRunner {
 public:
  struct Stats {
    int64_t warmups = 0;   // first step of a shape, run eagerly
    int64_t captures = 0;  // graphs recorded (and replayed for their own step)
    int64_t replays = 0;   // steps that replayed a graph (captures included)
    int64_t eager = 0;     // steps run eagerly after a failed or dropped capture, or on an eager-only shape
    int64_t dropped = 0;   // graphs dropped because the scratch arena moved
  };

  explicit CudaGraphRunner(GraphBackend& backend = cuda_graph_backend()) : backend_(backend) {}

  // Runs one step of `shape` (above). Exceptions of an eager forward propagate; a capture's do not (the step is
  // then run eagerly, which throws again if the fault is real).
  void run(ExecCtx& ctx, const GraphShape& shape, const std::function<void()>& stage,
           const std::function<void()>& forward);

  const Stats& stats() const { return stats_; }
  int64_t graphs() const;  // graphs held now

 private:
  struct Entry {
    bool warmed = false;      // ran eagerly once at this shape
    bool eager_only = false;  // its capture failed: never captured again
    std::shared_ptr<void> graph;
  };
  void drop_all();

  GraphBackend& backend_;
  std::map<GraphShape, Entry> entries_;
  const void* scratch_base_ = nullptr;  // arena block the held graphs point into
  Stats stats_;
};

}  // namespace hylora
