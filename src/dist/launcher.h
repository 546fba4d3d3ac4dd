#pragma once
// One process per GPU (issue 8, docs/multi_gpu.md §7). `--tp N` on one host: the process the user started is rank 0;
// it makes the group's id and starts ranks 1..N-1 as copies of itself (same arguments; their place and the id in
// the environment). `--nnodes M --node-rank R --dist-init-addr HOST:PORT`: each host's first process starts its
// N/M local ranks the same way, and the id comes from NCCL's own bootstrap at HOST:PORT (NCCL_COMM_ID), identical on
// every host, so no home-made transport carries it.
//
// Failure never hangs: a watchdog thread in each host's first process waits on the ranks it started; when one exits
// with a failure it prints one line naming the rank and its status and ends every rank of the host (the peers on
// other hosts then fail in NCCL). Started ranks die with their parent (PR_SET_PDEATHSIG), so a failing rank 0 takes
// its ranks down too.
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

#include "ops/device.h"

namespace hylora::dist {

struct LaunchOptions {
  int tp = 1;                  // ranks in all (one GPU each)
  int nnodes = 1;              // hosts; tp / nnodes ranks on each
  int node_rank = 0;           // this host's index
  std::string dist_init_addr;  // HOST:PORT of node 0's NCCL bootstrap (required when nnodes > 1)
};

// Checks the options against each other and the GPUs this host sees; throws Error naming the flag otherwise.
void check_launch(const LaunchOptions& o, int visible_gpus);

class RankGroup {
 public:
  // Call first thing in a command run with --tp (before any GPU work). In the process the user started: starts the
  // host's other ranks (argv is this process's command line) and the watchdog. In a started rank: reads its place.
  RankGroup(const LaunchOptions& o, char** argv);
  // Rank 0 of a host waits for the ranks it started (the watchdog still ends everything on a failure).
  ~RankGroup();
  RankGroup(const RankGroup&) = delete;
  RankGroup& operator=(const RankGroup&) = delete;

  int rank() const { return rank_; }
  int world() const { return world_; }
  int local_rank() const { return local_rank_; }  // = the GPU index on this host
  const ops::CollectiveId& id() const { return id_; }

 private:
  int rank_ = 0, world_ = 1, local_rank_ = 0;
  ops::CollectiveId id_{};
  std::vector<pid_t> children_;
  struct Watchdog;
  std::unique_ptr<Watchdog> watchdog_;
};

// The environment a started rank reads (exposed for tests).
inline constexpr const char* kRankEnv = "HYLORA_DIST_RANK";
inline constexpr const char* kIdEnv = "HYLORA_DIST_ID";
std::string id_to_hex(const ops::CollectiveId& id);
ops::CollectiveId id_from_hex(const std::string& hex);

}  // namespace hylora::dist
