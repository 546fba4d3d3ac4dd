#include "engine/cuda_graph_runner.h"

#include "ops/device.h"

namespace hylora {

namespace {
class CudaGraphs final : public GraphBackend {
 public:
  void begin(ExecCtx& ctx) override { ops::graph_capture_begin(ctx); }
  std::shared_ptr<void> end(ExecCtx& ctx) override { return ops::graph_capture_end(ctx); }
  void abort(ExecCtx& ctx) override { ops::graph_capture_abort(ctx); }
  void replay(ExecCtx& ctx, const std::shared_ptr<void>& graph) override { ops::graph_replay(ctx, graph); }
};
}  // namespace

GraphBackend& cuda_graph_backend() {
  static CudaGraphs backend;  // stateless
  return backend;
}

int64_t CudaGraphRunner::graphs() const {
  int64_t n = 0;
  for (const auto& [shape, e] : entries_) n += e.graph != nullptr;
  return n;
}

void CudaGraphRunner::drop_all() {
  for (auto& [shape, e] : entries_)
    if (e.graph) {
      e.graph.reset();
      ++stats_.dropped;
    }
}

void CudaGraphRunner::run(ExecCtx& ctx, const GraphShape& shape, const std::function<void()>& stage,
                          const std::function<void()>& forward) {
  Entry& e = entries_[shape];
  stage();
  if (ctx.scratch.base() != scratch_base_) {  // the arena grew into a new block: the graphs point into the old one
    drop_all();
    scratch_base_ = ctx.scratch.base();
  }
  if (e.graph) {
    backend_.replay(ctx, e.graph);
    ++stats_.replays;
    return;
  }
  if (e.eager_only || !e.warmed) {
    forward();
    ++(e.warmed ? stats_.eager : stats_.warmups);
    e.warmed = true;
    return;
  }
  // Record the step (nothing runs), then replay it for this step's own result.
  const size_t capacity = ctx.scratch.capacity();
  std::shared_ptr<void> graph;
  bool threw = false;
  backend_.begin(ctx);
  try {
    forward();
  } catch (const std::exception&) {
    threw = true;
  }
  if (threw)
    backend_.abort(ctx);
  else
    graph = backend_.end(ctx);
  const bool fits = ctx.scratch.high_water() <= capacity;  // no overflow block, whose memory goes back after the step
  if (graph && fits) {
    e.graph = std::move(graph);
    ++stats_.captures;
    backend_.replay(ctx, e.graph);
    ++stats_.replays;
    return;
  }
  if (!graph) e.eager_only = true;
  // Nothing of this step ran: run it eagerly from a fresh stage (which grows the arena when the capture outgrew it).
  stage();
  forward();
  ++stats_.eager;
}

}  // namespace hylora
