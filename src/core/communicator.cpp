// all_gather_columns_on_host: the host re-layout of a column gather (core/communicator.h).
#include "core/communicator.h"

#include "core/error.h"

namespace hylora::dist {

void all_gather_columns_on_host(Communicator& comm, ExecCtx& host_ctx, const Tensor& local, Tensor& out) {
  HYLORA_CHECK(local.device() == Device::CPU && out.device() == Device::CPU,
               "internal: all_gather_columns_on_host of device tensors");
  const int64_t rows = local.dim(0), w = local.dim(1), n = comm.size();
  check_shape(out, {rows, n * w}, "all_gather_columns output");
  Tensor stacked = Tensor::empty({n * rows, w});  // [rank][rows, w]
  comm.all_gather(host_ctx, local, stacked);
  for (int64_t r = 0; r < n; ++r) {
    Tensor dst = out.cols(r * w, w);
    copy_into(stacked.rows(r * rows, (r + 1) * rows), dst);
  }
}

}  // namespace hylora::dist
