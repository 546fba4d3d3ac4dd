#pragma once
// Communicator over NCCL: one process per GPU, the fast path of tensor parallelism across GPUs. Each collective is
// enqueued on the calling rank's stream (ctx.stream), so it is ordered with the step's kernels, nothing synchronises
// the host, and a CUDA graph can capture it. A result is complete in stream order: the next kernel on ctx.stream sees
// it; a host read must go through ops::copy_tensor / ops::synchronize first. The group is made from a CollectiveId
// that every rank holds (dist/launcher.h hands it out).
#include <memory>

#include "core/exec_ctx.h"
#include "dist/communicator.h"
#include "ops/device.h"

namespace hylora::dist {

class NcclCommunicator : public Communicator {
 public:
  // Joins the group on the current device (blocks until all `size` ranks have).
  NcclCommunicator(const ops::CollectiveId& id, int rank, int size);
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(ExecCtx& ctx, Tensor& t) override;
  void all_gather(ExecCtx& ctx, const Tensor& local, Tensor& out) override;
  void broadcast(ExecCtx& ctx, Tensor& t, int root) override;
  // An all_gather into ctx's scratch, then each rank's block copied into its columns on ctx.stream.
  void all_gather_columns(ExecCtx& ctx, const Tensor& local, Tensor& out) override;

 private:
  int rank_, size_;
  std::shared_ptr<void> comm_;
};

}  // namespace hylora::dist
