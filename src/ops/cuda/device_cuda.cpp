// The CUDA side of ops/device.h: a caching device arena (plain cudaMalloc, never managed memory) and copies.
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/caching_allocator.h"
#include "ops/device.h"

namespace hylora::ops::cuda_backend {

namespace {
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("CUDA error in ", what, ": ", cudaGetErrorString(e));
}

// The last cudaMalloc failure on this thread, for the out-of-memory message.
thread_local cudaError_t t_malloc_error = cudaSuccess;

// The device arena: plain cudaMalloc blocks cached per size class (256 B granularity below 1 MiB, then 1 MiB) with no
// cap, so steady-state steps (scratch regrowth, per-step uploads) do not cudaMalloc. When cudaMalloc fails it gives
// the cached blocks back (after the device is idle) and tries once more.
CachingAllocator::Config arena_config() {
  CachingAllocator::Config c;
  c.device = Device::CUDA;
  c.raw_alloc = [](size_t bytes) -> void* {
    void* p = nullptr;
    t_malloc_error = cudaMalloc(&p, bytes);
    return t_malloc_error == cudaSuccess ? p : nullptr;
  };
  c.raw_free = [](void* p) { cudaFree(p); };
  c.max_cached_bytes = SIZE_MAX;
  c.small_granularity = 256;
  c.on_oom = CachingAllocator::OnOom::kReleaseCachedAndRetry;
  c.before_release = [] { cudaDeviceSynchronize(); };
  c.error_text = [] { return cudaGetErrorString(t_malloc_error); };
  c.memory_name = "GPU memory";
  c.zero = [](void* p, size_t bytes) { check(cudaMemset(p, 0, bytes), "cudaMemset"); };
  return c;
}
}  // namespace

bool available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

Allocator& pinned_allocator() {
  // Page-locked blocks, cached (cudaHostAlloc is slow and synchronising); 1 GiB kept at most.
  static auto* a = [] {
    CachingAllocator::Config c;
    c.device = Device::CPU;
    c.raw_alloc = [](size_t bytes) -> void* {
      void* p = nullptr;
      return cudaHostAlloc(&p, bytes, cudaHostAllocDefault) == cudaSuccess ? p : nullptr;
    };
    c.raw_free = [](void* p) { cudaFreeHost(p); };
    c.max_cached_bytes = size_t{1} << 30;
    return new CachingAllocator(c);  // leaked on purpose, as the arena
  }();
  return *a;
}

Allocator& allocator() {
  static auto* arena = new CachingAllocator(arena_config());  // leaked on purpose: tensors may outlive static destruction
  return *arena;
}

void memcpy(ExecCtx& ctx, void* dst, const void* src, size_t bytes) {
  // Stream-ordered after the step's kernels; the synchronise makes host destinations readable and host sources
  // reusable as soon as this returns.
  auto st = static_cast<cudaStream_t>(ctx.stream);
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, st), "cudaMemcpyAsync");
  check(cudaStreamSynchronize(st), "a device step (cudaStreamSynchronize)");
}

DeviceMemory memory() {
  DeviceMemory m;
  check(cudaMemGetInfo(&m.free, &m.total), "cudaMemGetInfo");
  return m;
}

void synchronize(ExecCtx& ctx) {
  check(cudaStreamSynchronize(static_cast<cudaStream_t>(ctx.stream)), "a device step (cudaStreamSynchronize)");
}

void profiler_range(bool start) {
  check(start ? cudaProfilerStart() : cudaProfilerStop(), start ? "cudaProfilerStart" : "cudaProfilerStop");
}

}  // namespace hylora::ops::cuda_backend

// --- CUDA graphs ---------------------------------------------------------------------------------------------
namespace hylora::ops::cuda_backend {

void* create_stream() {
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamDefault), "cudaStreamCreate");
  return s;
}

namespace {
// ExecCtx::side_stream: the stream and the two events of a fork and a join (reused: a wait takes the event's state
// when it is queued, and in a capture each record/wait pair becomes one graph edge).
struct SideStream {
  cudaStream_t stream = nullptr;
  cudaEvent_t forked = nullptr, done = nullptr;
};
}  // namespace

void* create_side_stream() {
  auto* side = new SideStream;  // process lifetime, like create_stream's
  int least = 0, greatest = 0;
  check(cudaDeviceGetStreamPriorityRange(&least, &greatest), "cudaDeviceGetStreamPriorityRange");
  check(cudaStreamCreateWithPriority(&side->stream, cudaStreamNonBlocking, greatest), "cudaStreamCreateWithPriority");
  check(cudaEventCreateWithFlags(&side->forked, cudaEventDisableTiming), "cudaEventCreate");
  check(cudaEventCreateWithFlags(&side->done, cudaEventDisableTiming), "cudaEventCreate");
  return side;
}

void* side_fork(ExecCtx& ctx) {
  auto* side = static_cast<SideStream*>(ctx.side_stream);
  void* main = ctx.stream;
  check(cudaEventRecord(side->forked, static_cast<cudaStream_t>(main)), "cudaEventRecord (side stream fork)");
  check(cudaStreamWaitEvent(side->stream, side->forked, 0), "cudaStreamWaitEvent (side stream fork)");
  ctx.stream = side->stream;
  return main;
}

void side_join(ExecCtx& ctx, void* main) {
  auto* side = static_cast<SideStream*>(ctx.side_stream);
  check(cudaEventRecord(side->done, side->stream), "cudaEventRecord (side stream join)");
  check(cudaStreamWaitEvent(static_cast<cudaStream_t>(main), side->done, 0), "cudaStreamWaitEvent (side stream join)");
}

void graph_capture_begin(ExecCtx& ctx) {
  auto st = static_cast<cudaStream_t>(ctx.stream);
  HYLORA_CHECK(st != nullptr, "internal: CUDA graph capture on the legacy default stream");
  check(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
}

std::shared_ptr<void> graph_capture_end(ExecCtx& ctx) {
  cudaGraph_t graph = nullptr;
  const cudaError_t e = cudaStreamEndCapture(static_cast<cudaStream_t>(ctx.stream), &graph);
  if (e != cudaSuccess || graph == nullptr) {
    (void)cudaGetLastError();  // an invalidated capture is not a device fault: clear it and let the step run eagerly
    if (graph) cudaGraphDestroy(graph);
    return nullptr;
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t ie = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);  // the executable graph keeps what it needs
  if (ie != cudaSuccess) {
    (void)cudaGetLastError();
    return nullptr;
  }
  return std::shared_ptr<void>(exec, [](void* g) { cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(g)); });
}

void graph_capture_abort(ExecCtx& ctx) {
  auto st = static_cast<cudaStream_t>(ctx.stream);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (st == nullptr || cudaStreamIsCapturing(st, &status) != cudaSuccess || status == cudaStreamCaptureStatusNone) {
    (void)cudaGetLastError();
    return;
  }
  cudaGraph_t graph = nullptr;
  cudaStreamEndCapture(st, &graph);
  if (graph) cudaGraphDestroy(graph);
  (void)cudaGetLastError();
}

void graph_replay(ExecCtx& ctx, const std::shared_ptr<void>& graph) {
  check(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph.get()), static_cast<cudaStream_t>(ctx.stream)),
        "cudaGraphLaunch");
}

}  // namespace hylora::ops::cuda_backend
