#include "dist/nccl_communicator.h"

#include "core/error.h"

namespace hylora::dist {

NcclCommunicator::NcclCommunicator(ExecCtx& ctx, const ops::CollectiveId& id, int rank, int size)
    : ctx_(&ctx), rank_(rank), size_(size) {
  HYLORA_CHECK(ctx.device == Device::CUDA, "internal: an NCCL communicator on the CPU");
  HYLORA_CHECK(size >= 1 && rank >= 0 && rank < size, "internal: rank ", rank, " of ", size);
  comm_ = ops::collective_join(id, rank, size);
}

void NcclCommunicator::all_reduce_sum(Tensor& t) { ops::collective_all_reduce_sum(*ctx_, comm_, t); }

void NcclCommunicator::all_gather(const Tensor& local, Tensor& out) {
  HYLORA_CHECK(out.numel() == local.numel() * size_ && out.dtype() == local.dtype(), "internal: all_gather of ",
               shape_str(local.shape()), " into ", shape_str(out.shape()), " over ", size_, " ranks");
  ops::collective_all_gather(*ctx_, comm_, local, out);
}

void NcclCommunicator::broadcast(Tensor& t, int root) {
  HYLORA_CHECK(root >= 0 && root < size_, "internal: broadcast from rank ", root, " of ", size_);
  ops::collective_broadcast(*ctx_, comm_, t, root);
}

}  // namespace hylora::dist
