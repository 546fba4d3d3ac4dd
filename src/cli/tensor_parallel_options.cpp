#include "cli/tensor_parallel_options.h"

#include <condition_variable>
#include <mutex>

#include "core/error.h"
#include "dist/in_process_communicator.h"
#include "dist/model_shard_specs.h"
#include "dist/shard_model.h"
#include "engine/rank_channel.h"
#include "models/model.h"

namespace hylora::cli {

namespace {

// GPU ranks that share a device build their executors one after another, in rank order. Each memory plan
// (engine/memory_plan.h) measures what the device has in use when it runs, so concurrent plans would race, and the
// ranks' KV pools must be equal (every rank's pools make the same decisions, engine/rank_channel.h): rank 0 sizes its
// pool, the others ask for exactly its pages. A rank that fails wakes the ones waiting for their turn (they end as
// "another rank failed", so run_ranks reports the first rank's own error).
class BuildOrder {
 public:
  // Waits for rank `r`'s turn; returns the KV tokens rank 0 planned (0 for rank 0 itself).
  int64_t wait(int r) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return turn_ == r || failed_; });
    if (failed_) fail("another rank failed");
    return kv_tokens_;
  }
  void done(int r, int64_t kv_tokens) {
    std::lock_guard<std::mutex> lock(mu_);
    if (r == 0) kv_tokens_ = kv_tokens;
    ++turn_;
    cv_.notify_all();
  }
  void abort() {
    std::lock_guard<std::mutex> lock(mu_);
    failed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int turn_ = 0;
  bool failed_ = false;
  int64_t kv_tokens_ = 0;
};

// Rank r's executor options for N rank threads of this process.
ExecutorOptions rank_options(const ExecutorOptions& o, int rank, int ranks, int64_t kv_tokens_of_rank0) {
  ExecutorOptions ro = o;
  if (o.device != Device::CUDA) return ro;
  // The in-process communicator synchronises the stream and stages through host memory: not capturable. (The
  // executor still gives each rank a stream of its own, so the ranks' kernels run side by side.)
  ro.cuda_graphs = CudaGraphs::kOff;
  // --mem-fraction is the process's share of the device, divided among the ranks that share it. Ranks build in
  // order, and each plan counts what the device already holds (the ranks built before it), so rank r may bring the
  // device up to (r + 1)/N of the fraction: each rank's plan sees its own 1/N share (rank 0's also pays for the CUDA
  // context).
  ro.mem_fraction = o.mem_fraction * (rank + 1) / ranks;
  if (rank > 0 && o.kv_cache_tokens == 0) ro.kv_cache_tokens = kv_tokens_of_rank0;
  return ro;
}

}  // namespace

void add_tensor_parallel_options(CLI::App& app, TensorParallelOptions& o) {
  app.add_option("--tp", o.tp,
                 "tensor-parallel ranks, threads of this process (CPU; GPU: ranks sharing the device, a test path "
                 "with host-staged collectives; --mem-fraction is divided among them)")
      ->check(CLI::Range(1, 64));
  app.add_option("--ep", o.ep, "expert-parallel groups among the --tp ranks (must divide --tp)")
      ->check(CLI::Range(1, 64));
}

int with_executor(const std::string& model_dir, const ExecutorOptions& o, const TensorParallelOptions& tp,
                  const std::function<int(Executor&)>& body) {
  HYLORA_CHECK(tp.tp % tp.ep == 0, "--ep ", tp.ep, " does not divide --tp ", tp.tp);
  if (tp.tp == 1 && tp.ep == 1) {
    Executor executor(model_dir, o);
    return body(executor);
  }
  const dist::ShardPlan plan =
      dist::make_shard_plan(dist::model_shard_spec_from_file(model_dir + "/config.json"), tp.tp, tp.ep);
  const bool gpu = o.device == Device::CUDA;
  BuildOrder order;
  int status = 0;
  dist::run_ranks(tp.tp, [&](dist::Communicator& comm) {
    const int rank = comm.rank();
    std::unique_ptr<Executor> executor;
    try {
      std::unique_ptr<Model> model = dist::load_model_shard(model_dir, plan, rank);
      const int64_t kv_tokens = gpu ? order.wait(rank) : 0;
      ExecutorOptions ro = rank_options(o, rank, tp.tp, kv_tokens);
      ro.communicator = &comm;
      ro.shard_plan = &plan;
      executor = std::make_unique<Executor>(std::move(model), ro);
      if (gpu) order.done(rank, executor->kv_pages_total() * ro.page_size);
    } catch (...) {
      order.abort();
      throw;
    }
    if (rank != 0) return follow_leader(*executor, comm);
    LeaderChannel channel(comm);
    executor->lead(&channel);
    status = body(*executor);
    channel.stop();
  });
  return status;
}

}  // namespace hylora::cli
