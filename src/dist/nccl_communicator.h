#pragma once
// Communicator over NCCL: one process per GPU, the collectives enqueued on the rank's compute stream (ctx.stream), so
// they are ordered with the step's kernels and nothing synchronises the host. A result is complete in stream order:
// the next kernel on ctx.stream sees it; a host read must go through ops::copy_tensor / ops::synchronize first.
// The group is made from a CollectiveId that every rank holds (dist/launcher.h hands it out).
#include <memory>

#include "core/exec_ctx.h"
#include "dist/communicator.h"
#include "ops/device.h"

namespace hylora::dist {

class NcclCommunicator : public Communicator {
 public:
  // Joins the group (blocks until all `size` ranks have); ctx must outlive the communicator.
  NcclCommunicator(ExecCtx& ctx, const ops::CollectiveId& id, int rank, int size);
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(Tensor& t) override;
  void all_gather(const Tensor& local, Tensor& out) override;
  void broadcast(Tensor& t, int root) override;

 private:
  ExecCtx* ctx_;
  int rank_, size_;
  std::shared_ptr<void> comm_;
};

}  // namespace hylora::dist
