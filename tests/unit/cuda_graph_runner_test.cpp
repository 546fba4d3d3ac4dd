// The bookkeeping of engine/cuda_graph_runner.h on the CPU, with a recording stand-in for the CUDA graph calls: when a
// shape warms up, captures, replays, falls back to eager, and drops its graphs.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>

#include "engine/cuda_graph_runner.h"

namespace hylora {
namespace {

// Records the calls; `forward` queues "kernels" that run now, or are recorded while a capture is open.
class FakeGraphs final : public GraphBackend {
 public:
  void begin(ExecCtx&) override {
    ++begins;
    capturing = true;
  }
  std::shared_ptr<void> end(ExecCtx&) override {
    capturing = false;
    if (fail_next_end) {
      fail_next_end = false;
      return nullptr;
    }
    return std::make_shared<int>(recorded);
  }
  void abort(ExecCtx&) override {
    ++aborts;
    capturing = false;
  }
  void replay(ExecCtx&, const std::shared_ptr<void>& g) override { ran += *static_cast<int*>(g.get()); }
  bool capturing = false, fail_next_end = false;
  int begins = 0, aborts = 0, recorded = 0, ran = 0;  // kernels recorded into the last graph / run on the "device"
};

struct Harness {
  FakeGraphs backend;
  CudaGraphRunner runner{backend};
  ExecCtx ctx{Device::CPU, nullptr, ScratchArena()};
  size_t forward_bytes = 1024;  // scratch a forward pass takes
  bool throw_in_forward = false;
  int forwards = 0;

  void step(const GraphShape& shape) {
    auto stage = [&] {
      ctx.scratch.reset();
      ctx.scratch.tensor({64});  // the upload
    };
    auto forward = [&] {
      ++forwards;
      ctx.scratch.tensor({static_cast<int64_t>(forward_bytes / 4)});
      if (throw_in_forward && backend.capturing) throw std::runtime_error("synchronised while capturing");
      if (backend.capturing)
        backend.recorded = 1;
      else
        ++backend.ran;
    };
    runner.run(ctx, shape, stage, forward);
  }
};

const GraphShape kA{4, 8, 0, {}}, kB{8, 8, 4, {}};

TEST(CudaGraphRunner, WarmsUpThenCapturesThenReplays) {
  Harness h;
  h.step(kA);  // eager warm-up
  EXPECT_EQ(h.runner.stats().warmups, 1);
  EXPECT_EQ(h.backend.begins, 0);
  EXPECT_EQ(h.backend.ran, 1);
  h.step(kA);  // captured (nothing runs while recording), then replayed once for this step
  EXPECT_EQ(h.runner.stats().captures, 1);
  EXPECT_EQ(h.backend.begins, 1);
  EXPECT_EQ(h.backend.ran, 2);
  h.step(kA);  // replay only: the model's forward is not called
  h.step(kA);
  EXPECT_EQ(h.forwards, 2);
  EXPECT_EQ(h.backend.ran, 4);
  EXPECT_EQ(h.runner.stats().replays, 3);
  EXPECT_EQ(h.runner.graphs(), 1);
  h.step(kB);  // another shape warms up on its own
  EXPECT_EQ(h.runner.stats().warmups, 2);
  EXPECT_EQ(h.runner.graphs(), 1);
  EXPECT_EQ(h.backend.ran, 5);
}

TEST(CudaGraphRunner, DropsEveryGraphWhenTheArenaMoves) {
  Harness h;
  h.step(kA);
  h.step(kA);
  ASSERT_EQ(h.runner.graphs(), 1);
  h.forward_bytes = 1 << 20;  // a bigger step (another shape) outgrows the block
  h.step(kB);
  h.forward_bytes = 1024;
  h.step(kA);  // the arena grew into a new block: the graph of kA pointed into the old one
  EXPECT_EQ(h.runner.stats().dropped, 1);
  EXPECT_EQ(h.backend.begins, 2);  // kA captured again (already warm)
  EXPECT_EQ(h.runner.stats().captures, 2);
  EXPECT_EQ(h.backend.ran, 4);
}

TEST(CudaGraphRunner, AFailedCaptureRunsTheStepEagerlyAndTheShapeStaysEager) {
  Harness h;
  h.step(kA);
  h.backend.fail_next_end = true;
  h.step(kA);
  EXPECT_EQ(h.backend.ran, 2);  // the step still ran, eagerly
  EXPECT_EQ(h.runner.stats().eager, 1);
  EXPECT_EQ(h.runner.graphs(), 0);
  h.step(kA);
  EXPECT_EQ(h.backend.begins, 1);  // never captured again
  EXPECT_EQ(h.backend.ran, 3);
  EXPECT_EQ(h.runner.stats().eager, 2);
}

TEST(CudaGraphRunner, AnExceptionWhileCapturingAbortsTheCaptureAndRunsEagerly) {
  Harness h;
  h.step(kA);
  h.throw_in_forward = true;
  h.step(kA);
  EXPECT_EQ(h.backend.aborts, 1);
  EXPECT_FALSE(h.backend.capturing);
  EXPECT_EQ(h.backend.ran, 2);
  EXPECT_EQ(h.runner.graphs(), 0);
  // A fault that is not the capture's throws from the eager run too.
  Harness g;
  g.step(kA);
  g.throw_in_forward = true;
  auto bad = [&] {
    g.runner.run(g.ctx, kA, [&] { g.ctx.scratch.reset(); }, [&] { throw std::runtime_error("device fault"); });
  };
  EXPECT_THROW(bad(), std::runtime_error);
}

TEST(CudaGraphRunner, ACaptureThatOutgrewTheArenaIsNotKept) {
  Harness h;
  h.step(kA);
  h.forward_bytes = 1 << 20;  // this step needs more scratch than the warm-up did (an overflow block)
  h.step(kA);
  EXPECT_EQ(h.runner.graphs(), 0);
  EXPECT_EQ(h.runner.stats().captures, 0);
  EXPECT_EQ(h.backend.ran, 2);  // ran eagerly instead
  h.step(kA);                   // the arena has grown: this capture fits and is kept
  EXPECT_EQ(h.runner.graphs(), 1);
  EXPECT_EQ(h.backend.ran, 3);
}

TEST(CudaGraphRunner, StepsDifferingOnlyInActiveLoraTargetsGetTheirOwnGraphs) {
  // The LoRA skip decisions (models/linear_forward.cpp) are baked into a captured graph: a step whose adapters touch
  // other targets must not replay the graph of kB.
  GraphShape other = kB;
  other.lora_targets = {0b10};
  GraphShape mine = kB;
  mine.lora_targets = {0b01};
  ASSERT_NE(mine, other);
  Harness h;
  h.step(mine);
  h.step(mine);
  ASSERT_EQ(h.runner.graphs(), 1);
  h.step(other);  // warms up on its own, no replay of mine's graph
  EXPECT_EQ(h.runner.stats().warmups, 2);
  EXPECT_EQ(h.runner.stats().replays, 1);
  EXPECT_EQ(h.forwards, 3);
}

}  // namespace
}  // namespace hylora
