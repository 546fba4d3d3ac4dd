#pragma once
// The collectives a tensor-parallel step needs (docs/multi_gpu.md §4), one object per rank. Every rank of a group
// calls the same collectives in the same order with tensors of the same shape; each call returns when this rank's
// result is complete.
//
// It lives in core/ (not dist/) because the models' forward (models/tp_linear_forward.cpp) calls it and models/ is
// below dist/ (docs/design.md).
//
// Implementations: InProcessCommunicator (dist/in_process_communicator.h: N threads of one process sharing memory,
// for CPU tests) and, later, an NCCL one with the same interface. What the NCCL one needs: one ncclComm_t per rank
// (ncclCommInitRank with the ncclUniqueId that rank 0 creates and the launcher hands to every rank: through the
// spawned processes' environment with --tp on one host, through NCCL's own bootstrap at --dist-init-addr across
// hosts), the rank's compute stream (the collectives are enqueued on it, so they order with the kernels and need no
// host synchronisation), ncclGroupStart/ncclGroupEnd around several collectives issued together (e.g. the partial
// output and the LoRA shrink of a row-parallel projection when they are not packed into one buffer), and
// NCCL_NVLS_ENABLE=0 in every process (issue 8).
#include "core/tensor.h"

namespace hylora::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // t ← Σ over ranks of t (float32, in place; every rank ends with the same values, summed in rank order).
  virtual void all_reduce_sum(Tensor& t) = 0;
  // out = concatenation along dim 0 of every rank's `local`, in rank order: local [n, …] -> out [size·n, …].
  virtual void all_gather(const Tensor& local, Tensor& out) = 0;
  // t ← root's t on every rank (any dtype: step metadata is int32).
  virtual void broadcast(Tensor& t, int root) = 0;
};

// out [rows, size·w] = every rank's local [rows, w] side by side in rank order (a column-parallel output, e.g. the
// logits of a vocabulary-split lm_head): one all_gather along dim 0, then a local re-layout.
void all_gather_columns(Communicator& comm, const Tensor& local, Tensor& out);

}  // namespace hylora::dist
