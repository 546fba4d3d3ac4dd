// all_gather_columns: the one helper every Communicator implementation shares (core/communicator.h).
#include "core/communicator.h"

#include "core/error.h"

namespace hylora::dist {

void all_gather_columns(Communicator& comm, const Tensor& local, Tensor& out) {
  const int64_t rows = local.dim(0), w = local.dim(1), n = comm.size();
  check_shape(out, {rows, n * w}, "all_gather_columns output");
  Tensor stacked = Tensor::empty({n * rows, w});  // [rank][rows, w]
  comm.all_gather(local, stacked);
  for (int64_t r = 0; r < n; ++r) {
    Tensor dst = out.cols(r * w, w);
    copy_into(stacked.rows(r * rows, (r + 1) * rows), dst);
  }
}

}  // namespace hylora::dist
