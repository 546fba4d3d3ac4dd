#pragma once
// The collectives a tensor-parallel step needs (docs/multi_gpu.md §4), one object per rank. Every rank of a group
// calls the same collectives in the same order with tensors of the same shape; each call returns when this rank's
// result is complete.
//
// It lives in core/ (not dist/) because the models' forward (models/tp_linear_forward.cpp) calls it and models/ is
// below dist/ (docs/design.md).
//
// Every collective takes the calling rank's ExecCtx: its device and stream. A device implementation enqueues the
// collective on ctx.stream, so it is ordered with the step's kernels (NCCL: no host synchronisation); the in-process
// one synchronises that stream and stages device tensors through host memory. Host tensors (the leader channel's
// int32 messages) go with a CPU ExecCtx.
//
// Implementations: InProcessCommunicator (dist/in_process_communicator.h: N threads of one process sharing memory;
// the CPU tests and the one-GPU test path of --tp) and NcclCommunicator (dist/nccl_communicator.h: one process per
// GPU, the fast path). What the NCCL one needs: one ncclComm_t per rank (ncclCommInitRank with the ncclUniqueId that
// rank 0 creates and the launcher hands to every rank: through the spawned processes' environment with --tp on one
// host, through NCCL's own bootstrap at --dist-init-addr across hosts), the rank's compute stream (ctx.stream),
// ncclGroupStart/ncclGroupEnd around several collectives issued together (e.g. the partial output and the LoRA shrink
// of a row-parallel projection when they are not packed into one buffer), and NCCL_NVLS_ENABLE=0 in every process
// (issue 8).
#include "core/exec_ctx.h"
#include "core/tensor.h"

namespace hylora::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // t ← Σ over ranks of t (float32, in place; every rank ends with the same values, summed in rank order).
  virtual void all_reduce_sum(ExecCtx& ctx, Tensor& t) = 0;
  // out = concatenation along dim 0 of every rank's `local`, in rank order: local [n, …] -> out [size·n, …].
  virtual void all_gather(ExecCtx& ctx, const Tensor& local, Tensor& out) = 0;
  // t ← root's t on every rank (any dtype: step metadata is int32).
  virtual void broadcast(ExecCtx& ctx, Tensor& t, int root) = 0;
  // out [rows, size·w] = every rank's local [rows, w] (float32) side by side in rank order (a column-parallel output,
  // e.g. the logits of a vocabulary-split lm_head): an all_gather along dim 0, then a re-layout on ctx's device
  // (which needs the ops, a layer above core/: so each implementation does it).
  virtual void all_gather_columns(ExecCtx& ctx, const Tensor& local, Tensor& out) = 0;
};

// The host form of all_gather_columns over comm.all_gather (host tensors only): what the in-process communicator
// runs on its staged copies.
void all_gather_columns_on_host(Communicator& comm, ExecCtx& host_ctx, const Tensor& local, Tensor& out);

}  // namespace hylora::dist
