#pragma once
// Communicator for N threads of one process: ranks exchange pointers to their tensors through shared state guarded by
// a barrier. A rank that throws aborts the group: every rank waiting in a collective then throws too, so a failure
// never leaves the others hanging (the property issue 8 asks of the real launcher).
//
// This is the test path: the CPU tests of the sharded math and the models, and `--tp N` on one GPU (N rank threads
// sharing the device, docs/multi_gpu.md §6). A device tensor is staged through host memory: the rank's stream is
// synchronised, the tensor copied to a page-locked host buffer, the host algorithm run (the same rank-order sums, so
// results are deterministic and equal the CPU's), and the result copied back. That costs a host round trip per
// collective and cannot be captured in a CUDA graph; the fast path across GPUs is NcclCommunicator
// (dist/nccl_communicator.h), whose collectives are enqueued on the stream.
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "dist/communicator.h"

namespace hylora::dist {

// The state the N ranks share.
class InProcessGroup {
 public:
  explicit InProcessGroup(int size);
  int size() const { return size_; }
  // Waits until every rank has arrived (throws when the group was aborted).
  void barrier();
  void abort();
  // Per-rank published tensor (valid between the two barriers of a collective).
  const Tensor*& slot(int rank) { return slots_.at(rank); }

 private:
  int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  long generation_ = 0;
  bool aborted_ = false;
  std::vector<const Tensor*> slots_;
};

class InProcessCommunicator : public Communicator {
 public:
  InProcessCommunicator(std::shared_ptr<InProcessGroup> group, int rank) : group_(std::move(group)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }
  void all_reduce_sum(ExecCtx& ctx, Tensor& t) override;
  void all_gather(ExecCtx& ctx, const Tensor& local, Tensor& out) override;
  void broadcast(ExecCtx& ctx, Tensor& t, int root) override;
  void all_gather_columns(ExecCtx& ctx, const Tensor& local, Tensor& out) override;

 private:
  // The collectives on host tensors.
  void host_all_reduce_sum(Tensor& t);
  void host_all_gather(const Tensor& local, Tensor& out);
  void host_broadcast(Tensor& t, int root);
  std::shared_ptr<InProcessGroup> group_;
  int rank_;
};

// Runs body(comm) on `size` threads, one per rank, and joins them; rethrows the first rank's error (as
// hylora::Error "rank R: …") after every thread has ended.
void run_ranks(int size, const std::function<void(Communicator&)>& body);

}  // namespace hylora::dist
