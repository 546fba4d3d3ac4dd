#pragma once
// Device plumbing beside the ops: the allocator of each device, copies between host and device, and waiting for a
// device's queued work. The executor uses these to place weights, caches, adapter slots and the step on the compute
// device; the models never call them (they only run ops).
#include <cstddef>

#include "core/exec_ctx.h"

namespace hylora::ops {

// True when this build has the CUDA backend and a CUDA device is present.
bool cuda_available();
// host_allocator() or the CUDA backend's caching device arena. Throws Error for CUDA in a build without it.
Allocator& allocator_for(Device d);
// dst = src (same dtype, same shape, both contiguous; any pair of devices). Returns when dst can be read on the host.
void copy_tensor(ExecCtx& ctx, const Tensor& src, Tensor& dst);
// A contiguous copy of `t` (host, float32/int32) on `device` from allocator_for(device).
Tensor to_device(ExecCtx& ctx, const Tensor& t, Device device);
// The same converted to `dtype` on the way (float32 -> bfloat16, rounded to nearest even on the host; or no change).
Tensor to_device(ExecCtx& ctx, const Tensor& t, Device device, DType dtype);
// Bytes of a device's memory: its size and what is free now (cudaMemGetInfo; everything in use counts, this
// process's arena blocks and other processes alike). The CPU reports zeros (its caches are sized by options).
struct DeviceMemory {
  size_t total = 0, free = 0;
};
DeviceMemory device_memory(Device device);
// Waits for the work queued on ctx's stream (no-op on the CPU); throws Error naming a device fault.
void synchronize(ExecCtx& ctx);

namespace cuda_backend {
bool available();
Allocator& allocator();
void memcpy(ExecCtx& ctx, void* dst, const void* src, size_t bytes);  // any direction (unified addressing)
void synchronize(ExecCtx& ctx);
DeviceMemory memory();
}  // namespace cuda_backend

}  // namespace hylora::ops
