// The CUDA side of ops/device.h: a caching device arena (plain cudaMalloc, never managed memory) and copies.
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <vector>

#include "core/caching_host_allocator.h"
#include "ops/device.h"

namespace hylora::ops::cuda_backend {

namespace {
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("CUDA error in ", what, ": ", cudaGetErrorString(e));
}

// Blocks are rounded up to a size class (256 B granularity below 1 MiB, then 1 MiB) and kept on a free list per
// class when their last tensor goes, so steady-state steps (scratch regrowth, per-step uploads) do not cudaMalloc.
class CudaArena final : public Allocator {
 public:
  Device device() const override { return Device::CUDA; }
  std::shared_ptr<void> allocate(size_t bytes) override {
    const size_t size = size_class(bytes);
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
      }
    }
    if (!p) {
      cudaError_t e = cudaMalloc(&p, size);
      if (e != cudaSuccess) {
        release_cached();  // give cached blocks back and try once more
        e = cudaMalloc(&p, size);
      }
      if (e != cudaSuccess) fail("out of GPU memory allocating ", size, " bytes (", cudaGetErrorString(e), ")");
    }
    // The arena is never destroyed (a leaked singleton), so deleters running at exit stay valid.
    return std::shared_ptr<void>(p, [this, size](void* q) {
      std::lock_guard<std::mutex> lock(mu_);
      free_[size].push_back(q);
    });
  }
  void zero(void* p, size_t bytes) override { check(cudaMemset(p, 0, bytes), "cudaMemset"); }

 private:
  static size_t size_class(size_t bytes) {
    bytes = bytes < 256 ? 256 : bytes;
    const size_t g = bytes < (1u << 20) ? 256 : (1u << 20);
    return (bytes + g - 1) / g * g;
  }
  void release_cached() {
    std::lock_guard<std::mutex> lock(mu_);
    cudaDeviceSynchronize();
    for (auto& [size, list] : free_)
      for (void* q : list) cudaFree(q);
    free_.clear();
  }
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
};
}  // namespace

bool available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

Allocator& pinned_allocator() {
  // Page-locked blocks, cached (cudaHostAlloc is slow and synchronising); 1 GiB kept at most.
  static auto* a = new CachingHostAllocator(
      [](size_t bytes) -> void* {
        void* p = nullptr;
        return cudaHostAlloc(&p, bytes, cudaHostAllocDefault) == cudaSuccess ? p : nullptr;
      },
      [](void* p) { cudaFreeHost(p); }, size_t{1} << 30);  // leaked on purpose, as the arena
  return *a;
}

Allocator& allocator() {
  static CudaArena* arena = new CudaArena();  // leaked on purpose: tensors may outlive static destruction
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
