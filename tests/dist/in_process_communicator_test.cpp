// The in-process communicator the CPU tests run the sharded math on.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <mutex>
#include <random>

#include "core/error.h"
#include "dist/in_process_communicator.h"
#include "dist/plan_check.h"
#include "dist/shard_plan.h"
#include "dist/sharded_linear.h"
#include "sharding_test_support.h"

namespace hylora::dist {
namespace {

using namespace test;

// The in-process communicator: sums in rank order, gathers in rank order, broadcasts any dtype, strided views, and a
// failing rank ends the others' collectives with an error instead of a hang.
TEST(InProcessCommunicator, CollectivesAndFailure) {
  run_ranks(4, [](Communicator& c) {
    ExecCtx ctx;  // host tensors: a CPU context
    Tensor big = Tensor::empty({3, 5});
    for (int64_t i = 0; i < 15; ++i) big.f32()[i] = static_cast<float>(c.rank() * 100 + i);
    Tensor view = big.cols(1, 3);  // strided [3, 3]
    c.all_reduce_sum(ctx, view);
    EXPECT_EQ(view.f32()[0], 0 + 100 + 200 + 300 + 4.0f * 1);
    EXPECT_EQ(big.f32()[0], static_cast<float>(c.rank() * 100));  // outside the view: untouched
    Tensor local = Tensor::empty({2});
    local.f32()[0] = static_cast<float>(c.rank());
    local.f32()[1] = -static_cast<float>(c.rank());
    Tensor all = Tensor::empty({8});
    c.all_gather(ctx, local, all);
    EXPECT_EQ(all.f32()[6], 3.0f);
    EXPECT_EQ(all.f32()[7], -3.0f);
    Tensor meta = Tensor::empty({3}, DType::I32);
    for (int i = 0; i < 3; ++i) meta.i32()[i] = c.rank() == 2 ? 40 + i : -1;
    c.broadcast(ctx, meta, 2);
    EXPECT_EQ(meta.i32()[1], 41);
    Tensor cols = Tensor::empty({2, 4});
    Tensor mine = Tensor::empty({2, 1});
    mine.f32()[0] = static_cast<float>(c.rank());
    mine.f32()[1] = static_cast<float>(10 + c.rank());
    c.all_gather_columns(ctx, mine, cols);
    EXPECT_EQ(cols.f32()[2], 2.0f);
    EXPECT_EQ(cols.f32()[4 + 3], 13.0f);
  });
  std::string e;
  try {
    run_ranks(3, [](Communicator& c) {
      Tensor t = Tensor::zeros({4});
      ExecCtx ctx;
      if (c.rank() == 1) fail("GPU 1 is missing");
      c.all_reduce_sum(ctx, t);  // ranks 0 and 2 would wait forever without the abort
    });
  } catch (const Error& x) {
    e = x.what();
  }
  EXPECT_EQ(e, "rank 1: GPU 1 is missing");
}

// Back-to-back collectives of 8 ranks (each rank reuses and overwrites its buffers right after a call returns): a
// rank that raced ahead into the next collective while another still read its previous tensor would corrupt a sum.
TEST(InProcessCommunicator, ManyBackToBackCollectivesStayExact) {
  constexpr int kRanks = 8, kRounds = 300;
  run_ranks(kRanks, [](Communicator& c) {
    Tensor t = Tensor::empty({5});
    Tensor meta = Tensor::empty({2}, DType::I32);
    ExecCtx ctx;
    for (int round = 0; round < kRounds; ++round) {
      for (int i = 0; i < 5; ++i) t.f32()[i] = static_cast<float>(c.rank() + round * i);
      c.all_reduce_sum(ctx, t);
      // Σ_r (r + round·i) = 28 + 8·round·i, exact in float32 for these sizes.
      // A mismatch throws (not ASSERT: an early return would leave the other ranks waiting in the next collective).
      for (int i = 0; i < 5; ++i)
        if (t.f32()[i] != static_cast<float>(28 + 8 * round * i))
          fail("round ", round, ": sum ", t.f32()[i], ", expected ", 28 + 8 * round * i);
      meta.i32()[0] = c.rank() == round % kRanks ? round : -1;
      c.broadcast(ctx, meta, round % kRanks);
      if (meta.i32()[0] != round) fail("round ", round, ": broadcast gave ", meta.i32()[0]);
    }
  });
}

// The collectives take the calling rank's execution context. Host tensors are exchanged in place whatever its device
// (the leader channel's messages), and a column gather lands in a strided view of a wider output, leaving the
// columns outside the view untouched.
TEST(InProcessCommunicator, HostTensorsWithADeviceContextAndAStridedColumnGather) {
  run_ranks(2, [](Communicator& c) {
    ExecCtx gpu_ctx;  // a device context, never touched: every tensor here lives on the host
    gpu_ctx.device = Device::CUDA;
    Tensor t = Tensor::empty({3});
    for (int i = 0; i < 3; ++i) t.f32()[i] = static_cast<float>((c.rank() + 1) * (i + 1));
    c.all_reduce_sum(gpu_ctx, t);
    for (int i = 0; i < 3; ++i)
      if (t.f32()[i] != static_cast<float>(3 * (i + 1))) fail("sum ", i, " = ", t.f32()[i]);
    ExecCtx ctx;
    Tensor wide = Tensor::zeros({2, 7});
    for (int64_t i = 0; i < 14; ++i) wide.f32()[i] = -1.0f;
    Tensor cols = wide.cols(1, 4);  // [2, 4] with ld 7
    Tensor mine = Tensor::empty({2, 2});
    for (int64_t i = 0; i < 4; ++i) mine.f32()[i] = static_cast<float>(c.rank() * 10 + i);
    c.all_gather_columns(ctx, mine, cols);
    // row 0: rank 0's [0, 1] then rank 1's [10, 11]; row 1: [2, 3] then [12, 13].
    const float want[2][7] = {{-1, 0, 1, 10, 11, -1, -1}, {-1, 2, 3, 12, 13, -1, -1}};
    for (int r = 0; r < 2; ++r)
      for (int j = 0; j < 7; ++j)
        if (wide.f32()[r * 7 + j] != want[r][j]) fail("wide[", r, ", ", j, "] = ", wide.f32()[r * 7 + j]);
  });
}

}  // namespace
}  // namespace hylora::dist
