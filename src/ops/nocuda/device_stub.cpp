// The device plumbing of a build without nvcc: no CUDA device, and a clear refusal when one is asked for.
#include "ops/device.h"

namespace hylora::ops::cuda_backend {

namespace {
[[noreturn]] void no_cuda() {
  fail("--device cuda: this build has no CUDA backend (nvcc was not found when it was configured); rebuild on a "
       "machine with the CUDA toolkit or use --device cpu");
}
}  // namespace

bool available() { return false; }
void profiler_range(bool) {}
void sample_on_device(ExecCtx&, const Tensor&, const std::vector<int32_t>&, const std::vector<DeviceDraw>&, bool,
                      std::vector<int32_t>&, std::vector<float>&) {
  no_cuda();
}
int device_count() { return 0; }
void set_device(int) { no_cuda(); }
CollectiveId collective_unique_id() { no_cuda(); }
std::shared_ptr<void> collective_join(const CollectiveId&, int, int) { no_cuda(); }
void collective_all_reduce_sum(ExecCtx&, const std::shared_ptr<void>&, Tensor&) { no_cuda(); }
void collective_all_gather(ExecCtx&, const std::shared_ptr<void>&, const Tensor&, Tensor&) { no_cuda(); }
void collective_broadcast(ExecCtx&, const std::shared_ptr<void>&, Tensor&, int) { no_cuda(); }
Allocator& allocator() { no_cuda(); }
Allocator& pinned_allocator() { no_cuda(); }
void memcpy(ExecCtx&, void*, const void*, size_t) { no_cuda(); }
void synchronize(ExecCtx&) { no_cuda(); }
DeviceMemory memory() { no_cuda(); }
void* create_stream() { no_cuda(); }
void* create_side_stream() { no_cuda(); }
void* side_fork(ExecCtx&) { no_cuda(); }
void side_join(ExecCtx&, void*) {}
void graph_capture_begin(ExecCtx&) { no_cuda(); }
std::shared_ptr<void> graph_capture_end(ExecCtx&) { no_cuda(); }
void graph_capture_abort(ExecCtx&) {}
void graph_replay(ExecCtx&, const std::shared_ptr<void>&) { no_cuda(); }

}  // namespace hylora::ops::cuda_backend
