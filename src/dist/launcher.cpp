#include "dist/launcher.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <thread>

#include "core/error.h"

namespace hylora::dist {

std::string id_to_hex(const ops::CollectiveId& id) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (uint8_t b : id) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

ops::CollectiveId id_from_hex(const std::string& hex) {
  ops::CollectiveId id{};
  HYLORA_CHECK(hex.size() == 2 * id.size(), kIdEnv, ": expected ", 2 * id.size(), " hex digits, got ", hex.size());
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    fail(kIdEnv, ": '", c, "' is not a hex digit");
  };
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(nibble(hex[2 * i]) * 16 + nibble(hex[2 * i + 1]));
  return id;
}

void check_launch(const LaunchOptions& o, int visible_gpus) {
  HYLORA_CHECK(o.tp >= 1, "--tp ", o.tp, ": must be at least 1");
  HYLORA_CHECK(o.nnodes >= 1, "--nnodes ", o.nnodes, ": must be at least 1");
  HYLORA_CHECK(o.tp % o.nnodes == 0, "--tp ", o.tp, " is not divisible by --nnodes ", o.nnodes,
               " (every host runs the same number of ranks)");
  HYLORA_CHECK(o.node_rank >= 0 && o.node_rank < o.nnodes, "--node-rank ", o.node_rank, ": must be in [0, ",
               o.nnodes, ")");
  HYLORA_CHECK(o.nnodes == 1 || !o.dist_init_addr.empty(),
               "--nnodes ", o.nnodes, " needs --dist-init-addr HOST:PORT (node 0's address, the same on every host)");
  HYLORA_CHECK(o.dist_init_addr.empty() || o.dist_init_addr.find(':') != std::string::npos,
               "--dist-init-addr ", o.dist_init_addr, ": expected HOST:PORT");
  const int local = o.tp / o.nnodes;
  HYLORA_CHECK(local <= visible_gpus, "--tp ", o.tp, " over ", o.nnodes, " host(s) needs ", local,
               " GPUs on this host, but ", visible_gpus, " are visible");
}

struct RankGroup::Watchdog {
  std::thread thread;
  std::atomic<bool> done{false};
};

namespace {
// Ends every started rank and this process: one of them failed, so the group can never finish its collectives.
[[noreturn]] void end_group(const std::vector<pid_t>& children, const std::string& why) {
  std::fprintf(stderr, "hylora: %s; ending every rank of this host\n", why.c_str());
  for (pid_t p : children) kill(p, SIGTERM);
  std::_Exit(1);
}

std::string status_text(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}
}  // namespace

RankGroup::RankGroup(const LaunchOptions& o, char** argv) {
  const int local = o.tp / std::max(o.nnodes, 1);
  world_ = o.tp;
  if (const char* env = std::getenv(kRankEnv)) {  // a started rank
    rank_ = std::atoi(env);
    HYLORA_CHECK(rank_ >= 0 && rank_ < world_, kRankEnv, "=", env, " is outside --tp ", o.tp);
    local_rank_ = rank_ % local;
    const char* id = std::getenv(kIdEnv);
    HYLORA_CHECK(id != nullptr, kRankEnv, " is set but ", kIdEnv, " is not");
    id_ = id_from_hex(id);
    return;
  }
  check_launch(o, ops::device_count());
  rank_ = o.node_rank * local;
  local_rank_ = 0;
  // NCCL_COMM_ID makes ncclGetUniqueId return the id of the bootstrap root at that address: the same on every host.
  if (!o.dist_init_addr.empty()) setenv("NCCL_COMM_ID", o.dist_init_addr.c_str(), 1);
  setenv("NCCL_NVLS_ENABLE", "0", 0);  // NVLink multicast stays off unless the user chose otherwise (issue 8)
  id_ = ops::collective_unique_id();
  const std::string id_hex = id_to_hex(id_);
  const pid_t parent = getpid();
  for (int l = 1; l < local; ++l) {
    const int r = rank_ + l;
    const pid_t pid = fork();
    HYLORA_CHECK(pid >= 0, "--tp: cannot start rank ", r, ": ", std::strerror(errno));
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) std::_Exit(1);  // the parent died before the line above took effect
      setenv(kRankEnv, std::to_string(r).c_str(), 1);
      setenv(kIdEnv, id_hex.c_str(), 1);
      execv("/proc/self/exe", argv);
      std::fprintf(stderr, "hylora: rank %d: cannot start %s: %s\n", r, argv[0], std::strerror(errno));
      std::_Exit(127);
    }
    children_.push_back(pid);
  }
  if (children_.empty()) return;
  watchdog_ = std::make_unique<Watchdog>();
  Watchdog* w = watchdog_.get();
  const std::vector<pid_t> kids = children_;
  const int first = rank_;
  w->thread = std::thread([w, kids, first] {
    size_t ended = 0;
    while (ended < kids.size()) {
      int status = 0;
      const pid_t p = waitpid(-1, &status, 0);
      if (p < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (size_t i = 0; i < kids.size(); ++i)
        if (kids[i] == p) {
          ++ended;
          if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            end_group(kids, "rank " + std::to_string(first + static_cast<int>(i) + 1) + " (pid " +
                                std::to_string(p) + ") ended with " + status_text(status));
        }
    }
    w->done = true;
  });
}

RankGroup::~RankGroup() {
  // Rank 0 failed (this runs during the unwinding): its peers would wait for it in NCCL forever; end them first.
  if (std::uncaught_exceptions() > 0)
    for (pid_t p : children_) kill(p, SIGTERM);
  if (watchdog_ && watchdog_->thread.joinable()) watchdog_->thread.join();
}

}  // namespace hylora::dist
