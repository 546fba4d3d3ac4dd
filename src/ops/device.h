#pragma once
// Device plumbing beside the ops: the allocator of each device, copies between host and device, and waiting for a
// device's queued work. The executor uses these to place weights, caches, adapter slots and the step on the compute
// device; the models never call them (they only run ops).
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/exec_ctx.h"

namespace hylora::ops {

// True when this build has the CUDA backend and a CUDA device is present.
bool cuda_available();
// host_allocator() or the CUDA backend's caching device arena. Throws Error for CUDA in a build without it.
Allocator& allocator_for(Device d);
// Host memory for what a step hands back to the host (its logits), reused from step to step instead of being faulted
// in again: a caching host allocator, page-locked when the step runs on a GPU (faster copies back).
Allocator& host_output_allocator(Device d);
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

// --- CUDA graphs of whole steps (engine/cuda_graph_runner.h) ---------------------------------------------------
// A stream of its own for an executor (a null stream, the legacy default, cannot be captured). It is a blocking
// stream: the allocator's cudaMemset (legacy stream) stays ordered after it, and any legacy-stream call made during a
// capture fails the capture instead of escaping it. Never destroyed (one per executor, process lifetime).
void* create_stream();
// A side stream for ExecCtx::side_stream (never destroyed, like create_stream): non-blocking and of the highest
// priority, so that the small kernels queued on it get SMs as soon as the main stream's large ones free some.
void* create_side_stream();
// Work beside the main stream. Construct before the main-stream ops it may overlap, with the ops that go on the side
// in `fn` (queued with ctx.stream pointing at the side stream, ordered after everything ctx.stream held at
// construction); the destructor (or join()) makes ctx.stream wait for them. The side ops must not touch what the
// main stream writes before the join. Without a side stream (CPU, overlap off) `fn` runs in place, in order. Graph
// captures record the fork and the join as graph edges.
class SideWork {
 public:
  template <class Fn>
  SideWork(ExecCtx& ctx, Fn&& fn) : ctx_(ctx) {
    if (!ctx.side_stream) {
      fn();
      return;
    }
    void* main = fork(ctx);  // ctx.stream is now the side stream
    try {
      fn();
    } catch (...) {
      ctx.stream = main;
      try {
        join(ctx, main);
      } catch (...) {
      }
      throw;
    }
    ctx.stream = main;
    main_ = main;
    forked_ = true;
  }
  SideWork(const SideWork&) = delete;
  SideWork& operator=(const SideWork&) = delete;
  ~SideWork() {  // joins when join() was not reached (an exception); a failure there is already being reported
    if (!forked_) return;
    try {
      join(ctx_, main_);
    } catch (...) {
    }
  }
  // ctx.stream waits for the side ops; throws Error when the device refuses the join.
  void join() {
    if (!forked_) return;
    forked_ = false;
    join(ctx_, main_);
  }

 private:
  // ctx.side_stream waits for ctx.stream; ctx.stream becomes the side stream; returns the main stream.
  static void* fork(ExecCtx& ctx);
  // `main` waits for the side stream's work so far.
  static void join(ExecCtx& ctx, void* main);
  ExecCtx& ctx_;
  void* main_ = nullptr;
  bool forked_ = false;
};

// Starts recording ctx.stream's work (thread-local mode: an unsafe call from this thread, such as cudaMalloc or a
// synchronising copy, fails the capture). Nothing queued while recording runs.
void graph_capture_begin(ExecCtx& ctx);
// Stops recording and instantiates the graph. Returns null (and leaves no capture open, no error pending) when the
// capture failed, e.g. because an op synchronised or allocated while recording; callers then run the step eagerly.
std::shared_ptr<void> graph_capture_end(ExecCtx& ctx);
// Ends a capture abandoned by an exception (discards whatever was recorded; no-op when none is open).
void graph_capture_abort(ExecCtx& ctx);
// Queues one replay of `graph` on ctx.stream (asynchronous, like the kernels it holds).
void graph_replay(ExecCtx& ctx, const std::shared_ptr<void>& graph);

// --- Token draws on the GPU (engine/executor.h TokenDraw) -------------------------------------------------------
struct DeviceDraw {
  float temperature = 1.0f;  // ≤ 0: greedy
  int32_t top_k = 0;         // ≤ 0: off
  float top_p = 1.0f;        // ≥ 1: off
  float min_p = 0.0f;        // ≤ 0: off
  uint64_t seed = 0;
  uint64_t step = 0;         // the token's position in its request: draws are a pure function of (seed, step, row)
};
// Draw i: a token from row rows[i] of logits [N, V] (float32 on ctx's GPU) under params[i] — the contract of
// ops/cuda/sampling.h (greedy = argmax, lowest id on ties; else an exact Gumbel-max draw from softmax(l / T)
// restricted to top-k / top-p / min-p) — and, when `with_logprobs`, its log-softmax under the raw logits (fp32; else
// NaN). Only the ids and log-probs come back to the host; returns when they are there. GPU only (the CPU executor
// samples with engine/sampler.h).
void sample_on_device(ExecCtx& ctx, const Tensor& logits, const std::vector<int32_t>& rows,
                      const std::vector<DeviceDraw>& params, bool with_logprobs, std::vector<int32_t>& ids,
                      std::vector<float>& logprobs);

// Marks the region an external profiler records (`ncu --profile-from-start off`): cudaProfilerStart/Stop on the
// GPU; nothing on the CPU. hylora bench's --profile-workload brackets one workload's timed steps with it.
void profiler_range(Device device, bool start);

// --- Collectives across GPUs (multi-GPU, docs/multi_gpu.md): NCCL, loaded on first use ------------------------------
// A group's identity: made once (by the first rank, or by every rank alike when NCCL_COMM_ID=host:port points NCCL's
// own bootstrap at one address) and handed to every rank.
using CollectiveId = std::array<uint8_t, 128>;
int device_count();            // CUDA devices this process sees (0 without the CUDA backend or a GPU)
void set_device(int index);    // the GPU this process (rank) runs on, before anything is placed
CollectiveId collective_unique_id();
// This rank's membership of the group `id` of `size` ranks, on the current device; blocks until every rank joined.
std::shared_ptr<void> collective_join(const CollectiveId& id, int rank, int size);
// Enqueued on ctx.stream (ordered with the step's kernels; no host synchronisation): t ← Σ over ranks (in place);
// out [size·n, …] = every rank's local [n, …] in rank order; t ← root's t.
void collective_all_reduce_sum(ExecCtx& ctx, const std::shared_ptr<void>& comm, Tensor& t);
void collective_all_gather(ExecCtx& ctx, const std::shared_ptr<void>& comm, const Tensor& local, Tensor& out);
void collective_broadcast(ExecCtx& ctx, const std::shared_ptr<void>& comm, Tensor& t, int root);

namespace cuda_backend {
bool available();
int device_count();
void set_device(int index);
CollectiveId collective_unique_id();
std::shared_ptr<void> collective_join(const CollectiveId& id, int rank, int size);
void collective_all_reduce_sum(ExecCtx& ctx, const std::shared_ptr<void>& comm, Tensor& t);
void collective_all_gather(ExecCtx& ctx, const std::shared_ptr<void>& comm, const Tensor& local, Tensor& out);
void collective_broadcast(ExecCtx& ctx, const std::shared_ptr<void>& comm, Tensor& t, int root);
void profiler_range(bool start);
void sample_on_device(ExecCtx& ctx, const Tensor& logits, const std::vector<int32_t>& rows,
                      const std::vector<DeviceDraw>& params, bool with_logprobs, std::vector<int32_t>& ids,
                      std::vector<float>& logprobs);
Allocator& allocator();
Allocator& pinned_allocator();  // caching, page-locked host blocks
void memcpy(ExecCtx& ctx, void* dst, const void* src, size_t bytes);  // any direction (unified addressing)
void synchronize(ExecCtx& ctx);
DeviceMemory memory();
void* create_stream();
void* create_side_stream();
void* side_fork(ExecCtx& ctx);
void side_join(ExecCtx& ctx, void* main);
void graph_capture_begin(ExecCtx& ctx);
std::shared_ptr<void> graph_capture_end(ExecCtx& ctx);
void graph_capture_abort(ExecCtx& ctx);
void graph_replay(ExecCtx& ctx, const std::shared_ptr<void>& graph);
}  // namespace cuda_backend

}  // namespace hylora::ops
