#include "ops/device.h"

#include <cstring>
#include <limits>

#include "core/caching_host_allocator.h"

namespace hylora::ops {

bool cuda_available() { return cuda_backend::available(); }

Allocator& allocator_for(Device d) { return d == Device::CUDA ? cuda_backend::allocator() : host_allocator(); }

Allocator& host_output_allocator(Device d) {
  return d == Device::CUDA ? cuda_backend::pinned_allocator() : caching_host_allocator();
}

void copy_tensor(ExecCtx& ctx, const Tensor& src, Tensor& dst) {
  HYLORA_CHECK(src.dtype() == dst.dtype() && src.numel() == dst.numel() && src.contiguous() && dst.contiguous(),
               "internal: copy_tensor of ", shape_str(src.shape()), " ", dtype_name(src.dtype()), " into ",
               shape_str(dst.shape()), " ", dtype_name(dst.dtype()));
  if (src.nbytes() == 0) return;
  if (src.device() == Device::CPU && dst.device() == Device::CPU)
    std::memcpy(dst.raw(), src.raw(), src.nbytes());
  else
    cuda_backend::memcpy(ctx, dst.raw(), src.raw(), src.nbytes());
}

Tensor to_device(ExecCtx& ctx, const Tensor& t, Device device) {
  const Tensor src = t.contiguous() ? t : t.clone();
  Tensor out = Tensor::empty(src.shape(), src.dtype(), allocator_for(device));
  copy_tensor(ctx, src, out);
  return out;
}

Tensor to_device(ExecCtx& ctx, const Tensor& t, Device device, DType dtype) {
  if (dtype == t.dtype()) return to_device(ctx, t, device);
  HYLORA_CHECK(t.dtype() == DType::F32 && dtype == DType::BF16, "internal: to_device converts float32 to bfloat16 only, "
               "not ", dtype_name(t.dtype()), " to ", dtype_name(dtype));
  const Tensor src = t.contiguous() ? t : t.clone();
  Tensor half = Tensor::empty(src.shape(), DType::BF16);
  const float* in = src.f32();
  auto* out = static_cast<uint16_t*>(half.raw());
  for (int64_t i = 0, n = src.numel(); i < n; ++i) out[i] = f32_to_bf16(in[i]);
  return to_device(ctx, half, device);
}

DeviceMemory device_memory(Device device) { return device == Device::CUDA ? cuda_backend::memory() : DeviceMemory{}; }

void synchronize(ExecCtx& ctx) {
  if (ctx.device == Device::CUDA) cuda_backend::synchronize(ctx);
}

void profiler_range(Device device, bool start) {
  if (device == Device::CUDA) cuda_backend::profiler_range(start);
}

int device_count() { return cuda_backend::device_count(); }
void set_device(int index) { cuda_backend::set_device(index); }
CollectiveId collective_unique_id() { return cuda_backend::collective_unique_id(); }
std::shared_ptr<void> collective_join(const CollectiveId& id, int rank, int size) {
  return cuda_backend::collective_join(id, rank, size);
}
void collective_all_reduce_sum(ExecCtx& ctx, const std::shared_ptr<void>& comm, Tensor& t) {
  cuda_backend::collective_all_reduce_sum(ctx, comm, t);
}
void collective_all_gather(ExecCtx& ctx, const std::shared_ptr<void>& comm, const Tensor& local, Tensor& out) {
  cuda_backend::collective_all_gather(ctx, comm, local, out);
}
void collective_broadcast(ExecCtx& ctx, const std::shared_ptr<void>& comm, Tensor& t, int root) {
  cuda_backend::collective_broadcast(ctx, comm, t, root);
}

void* create_stream() { return cuda_backend::create_stream(); }
void* create_side_stream() { return cuda_backend::create_side_stream(); }
void* SideWork::fork(ExecCtx& ctx) { return cuda_backend::side_fork(ctx); }
void SideWork::join(ExecCtx& ctx, void* main) { cuda_backend::side_join(ctx, main); }
void graph_capture_begin(ExecCtx& ctx) { cuda_backend::graph_capture_begin(ctx); }
std::shared_ptr<void> graph_capture_end(ExecCtx& ctx) { return cuda_backend::graph_capture_end(ctx); }
void graph_capture_abort(ExecCtx& ctx) { cuda_backend::graph_capture_abort(ctx); }
void graph_replay(ExecCtx& ctx, const std::shared_ptr<void>& graph) { cuda_backend::graph_replay(ctx, graph); }

void sample_on_device(ExecCtx& ctx, const Tensor& logits, const std::vector<int32_t>& rows,
                      const std::vector<DeviceDraw>& params, bool with_logprobs, std::vector<int32_t>& ids,
                      std::vector<float>& logprobs) {
  HYLORA_CHECK(ctx.device == Device::CUDA && logits.device() == Device::CUDA, "internal: sample_on_device on the CPU");
  HYLORA_CHECK(rows.size() == params.size(), "internal: sample_on_device with ", rows.size(), " rows and ",
               params.size(), " parameter sets");
  ids.assign(rows.size(), 0);
  logprobs.assign(rows.size(), std::numeric_limits<float>::quiet_NaN());
  if (rows.empty()) return;
  cuda_backend::sample_on_device(ctx, logits, rows, params, with_logprobs, ids, logprobs);
}

}  // namespace hylora::ops
