#pragma once
// Continuous batching over the Executor (engine/executor.h), on one engine thread.
//
// Each step = one decode token of every running request whose prompt is done, then chunked prefill of running
// requests, then newly admitted requests, all within `max_batch_tokens` (decodes first: prefill only takes what
// they leave). Admission is FCFS, bounded by sequence slots, KV pages (a request is admitted when its whole
// prompt fits) and adapter slots (never more distinct adapters than Executor::max_adapters_per_step(); a
// request whose adapter has no slot waits). Fairness: a request waiting for an adapter slot may be skipped by
// later requests whose adapters are already running, but only for `max_adapter_wait`; after that only base-model
// requests (which hold no slot) pass it, so the running adapters drain and it gets a slot. When KV pages run out mid-generation, the
// newest running request is preempted: its sequence is released and it is requeued at the front of the queue,
// to be recomputed (prompt + tokens generated so far) when it is admitted again.
//
// Nothing here depends on the device: only the Executor interface and host-side sampling.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/executor.h"
#include "scheduler/request.h"

namespace hylora {
namespace lora {
class AdapterRegistry;
}

namespace scheduler {

struct SchedulerOptions {
  int64_t max_batch_tokens = 512;  // rows per step (≤ the executor's)
  int64_t prefill_chunk = 256;     // new tokens of one sequence per step
  std::chrono::milliseconds max_adapter_wait{1000};
  std::vector<int32_t> eos_token_ids;
};

// Counters and gauges read by /metrics (written by the engine thread).
struct SchedulerStats {
  std::atomic<int64_t> waiting{0}, running{0}, steps{0}, preemptions{0};
  std::atomic<int64_t> last_step_tokens{0}, last_step_sequences{0}, last_step_adapters{0};
  std::atomic<int64_t> prompt_tokens{0}, generated_tokens{0};
  std::atomic<int64_t> finished_stop{0}, finished_length{0}, finished_abort{0}, finished_error{0};
  std::atomic<int64_t> free_kv_pages{0}, kv_pages_total{0}, free_sequences{0}, adapter_slot_loads{0};
  std::atomic<int64_t> adapter_slots_per_step{0};
};

class Scheduler {
 public:
  // `registry` (may be null) supplies the slot actions (pin/unpin/evict) that only this thread may apply.
  Scheduler(Executor& executor, lora::AdapterRegistry* registry, SchedulerOptions options);
  ~Scheduler();  // stops the engine thread; unfinished requests finish with kAbort

  void start();  // runs steps on a new engine thread
  void stop();

  // Thread-safe. Returns the request's id (for cancel). The request's sink gets every event.
  uint64_t submit(GenerationRequest request);
  // The same for requests that must reach the engine thread together (one step admits all of them or none, as
  // capacity allows): the n choices of one API request. Submitted one by one, the engine thread could wake between
  // them and run the first choice's prefill alone, so the same seeded request would see other batch compositions,
  // other GEMM row counts and so other roundings from run to run.
  std::vector<uint64_t> submit_group(std::vector<GenerationRequest> requests);
  void cancel(uint64_t id);  // finishes it with kAbort unless it already finished; frees its sequence

  // Without start(): runs steps on the calling thread until nothing is waiting or running (tests, offline use).
  void run_until_idle();

  const SchedulerStats& stats() const { return stats_; }
  const Executor& executor() const { return ex_; }

 private:
  struct Seq;
  struct Work {
    Seq* seq;
    int64_t n;
  };
  bool step();  // false when there was nothing to do
  void drain_inbox();
  void apply_slot_actions();
  void plan_running(std::vector<Work>& works, int64_t& budget);
  void admit(std::vector<Work>& works, int64_t& budget);
  void preempt_newest();
  void preempt(size_t running_index);
  void finish(Seq& s, FinishReason reason, const std::string& message = {});
  void remove_finished();
  int64_t free_pages_left(const std::vector<Work>& works) const;
  void update_gauges();
  void loop();

  Executor& ex_;
  lora::AdapterRegistry* registry_;
  SchedulerOptions opt_;
  SchedulerStats stats_;

  std::mutex mu_;  // guards inbox_, cancels_, stopping_
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Seq>> inbox_;
  std::vector<uint64_t> cancels_;
  bool stopping_ = false;
  std::atomic<uint64_t> next_id_{1};
  std::thread thread_;

  // Engine-thread state.
  std::deque<std::unique_ptr<Seq>> waiting_;
  std::vector<std::unique_ptr<Seq>> running_;  // admission order: the back is the newest
  uint64_t admissions_ = 0;
};

}  // namespace scheduler
}  // namespace hylora
