#pragma once
// Tensor parallel: every rank runs the same executor calls (docs/multi_gpu.md §4). Rank 0 is the only one with
// clients (score's requests, serve's scheduler, bench's workloads); its Executor tells the other ranks each call that
// changes executor state — open / release a sequence, load / pin / unpin / evict an adapter, execute a step — through
// a LeaderChannel before it runs the call itself, and the other ranks run the same call in follow_leader(). The
// collectives inside the step then meet, and every rank's pools make the same decisions (slots, pages, adapter
// slots): they started equal and saw the same calls. Read-only calls (lengths, free pages) are answered by rank 0
// alone.
//
// A call is one broadcast of a small int32 message from rank 0 (header [kind, words], then the words). Adapters are
// named by an id the channel assigns at load: every rank reads and validates the files itself against the whole
// model's shapes and keeps its shard (Executor::load_adapter), and one all-reduce of an error flag makes every rank
// agree on the outcome (a rank that cannot read the files fails the load on all of them, never only on one).
//
// What a call does is deterministic given the state, so an error rank 0 sees (a bad token id, PoolExhausted) is seen
// by every rank before anything changed; the others swallow it and rank 0 reports it to its client.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/exec_ctx.h"
#include "engine/executor.h"

namespace hylora {

class LeaderChannel {
 public:
  explicit LeaderChannel(dist::Communicator& comm);
  // Sends kStop (once): the followers' loops return. Called by the destructor too, so a leader that throws still
  // releases the followers.
  void stop();
  ~LeaderChannel();
  LeaderChannel(const LeaderChannel&) = delete;
  LeaderChannel& operator=(const LeaderChannel&) = delete;

  // Held by rank 0's Executor for the whole of a call (the message and the local run, whose collectives the
  // followers meet): calls from different threads (serve's engine thread and an adapter load from an HTTP thread)
  // must not interleave their messages and collectives.
  std::unique_lock<std::recursive_mutex> hold() { return std::unique_lock<std::recursive_mutex>(mu_); }

  // --- called by rank 0's Executor (engine/executor.cpp), each before the call runs there ---------------------
  void open_sequence(SeqId expected);
  void release_sequence(SeqId seq);
  void execute(const std::vector<SeqWork>& works);
  // Broadcasts the load, runs `load` here, and agrees with the other ranks on success; returns rank 0's shard.
  std::shared_ptr<const lora::NormalizedAdapter> load_adapter(
      const std::string& name, const std::string& dir,
      const std::function<std::shared_ptr<const lora::NormalizedAdapter>()>& load);
  void pin_adapter(const lora::NormalizedAdapter& a);
  void unpin_adapter(const lora::NormalizedAdapter& a);
  void evict_adapter(const lora::NormalizedAdapter& a);

 private:
  int32_t id_of(const lora::NormalizedAdapter& a) const;  // throws for an adapter this executor did not load
  void forget_released();                                  // kForget for adapters rank 0 no longer holds
  void send(int32_t kind, const std::vector<int32_t>& words);

  dist::Communicator& comm_;
  ExecCtx host_;  // the messages are host tensors (a CPU context for the collectives that carry them)
  std::recursive_mutex mu_;
  bool stopped_ = false;
  int32_t next_id_ = 1;
  struct Known {
    std::weak_ptr<const lora::NormalizedAdapter> adapter;
    int32_t id;
  };
  std::map<const lora::NormalizedAdapter*, Known> ids_;
};

// The loop of ranks 1..N−1: runs rank 0's calls on `ex` until kStop. Returns normally at kStop; a failed collective
// (rank 0 died, the group aborted) ends it with that error.
void follow_leader(Executor& ex, dist::Communicator& comm);

}  // namespace hylora
