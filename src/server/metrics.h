#pragma once
// Prometheus text exposition (version 0.0.4) of the server's counters, the scheduler's gauges and two latency
// histograms (time to first token, inter-token latency).
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace hylora {
namespace lora {
class AdapterRegistry;
}
namespace scheduler {
struct SchedulerStats;
}

namespace server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last = +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct ServerMetrics {
  Histogram ttft{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}};
  Histogram itl{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}};
  std::atomic<int64_t> disconnects{0};

  void count_http(const std::string& path, int status);
  std::string render(const scheduler::SchedulerStats& s, const lora::AdapterRegistry& registry) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> http_;  // (path, status) -> count
};

}  // namespace server
}  // namespace hylora
