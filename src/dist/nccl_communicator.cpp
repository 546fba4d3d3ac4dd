#include "dist/nccl_communicator.h"

#include "core/error.h"
#include "ops/elementwise.h"

namespace hylora::dist {

namespace {
void check_device_ctx(const ExecCtx& ctx, const char* op) {
  HYLORA_CHECK(ctx.device == Device::CUDA, "internal: NCCL ", op, " with a host execution context (NCCL collectives "
               "run on the rank's stream; host messages must be staged through device memory)");
}
}  // namespace

NcclCommunicator::NcclCommunicator(const ops::CollectiveId& id, int rank, int size) : rank_(rank), size_(size) {
  HYLORA_CHECK(size >= 1 && rank >= 0 && rank < size, "internal: rank ", rank, " of ", size);
  comm_ = ops::collective_join(id, rank, size);
}

void NcclCommunicator::all_reduce_sum(ExecCtx& ctx, Tensor& t) {
  check_device_ctx(ctx, "all_reduce_sum");
  ops::collective_all_reduce_sum(ctx, comm_, t);
}

void NcclCommunicator::all_gather(ExecCtx& ctx, const Tensor& local, Tensor& out) {
  check_device_ctx(ctx, "all_gather");
  HYLORA_CHECK(out.numel() == local.numel() * size_ && out.dtype() == local.dtype(), "internal: all_gather of ",
               shape_str(local.shape()), " into ", shape_str(out.shape()), " over ", size_, " ranks");
  ops::collective_all_gather(ctx, comm_, local, out);
}

void NcclCommunicator::broadcast(ExecCtx& ctx, Tensor& t, int root) {
  check_device_ctx(ctx, "broadcast");
  HYLORA_CHECK(root >= 0 && root < size_, "internal: broadcast from rank ", root, " of ", size_);
  ops::collective_broadcast(ctx, comm_, t, root);
}

void NcclCommunicator::all_gather_columns(ExecCtx& ctx, const Tensor& local, Tensor& out) {
  const int64_t rows = local.dim(0), w = local.dim(1), n = size_;
  check_shape(out, {rows, n * w}, "all_gather_columns output");
  Tensor stacked = ctx.scratch.tensor({n * rows, w});  // [rank][rows, w]
  all_gather(ctx, local, stacked);
  for (int64_t r = 0; r < n; ++r) {
    Tensor dst = out.cols(r * w, w);
    ops::copy(ctx, stacked.rows(r * rows, (r + 1) * rows), dst);
  }
}

}  // namespace hylora::dist
