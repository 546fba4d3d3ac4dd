#include "server/metrics.h"

#include <cstdio>

#include "lora/adapter_registry.h"
#include "scheduler/scheduler.h"

namespace hylora::server {

namespace {
std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}
void metric(std::string& out, const std::string& name, const char* type, const std::string& help, double v) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + num(v) + "\n";
}
}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard<std::mutex> lock(mu_);
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  cum += counts_.back();
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
  out += name + "_sum " + num(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
}

void ServerMetrics::count_http(const std::string& path, int status) {
  // Only the served paths become labels: a client must not be able to add label values (or break the format).
  static const char* kPaths[] = {"/v1/chat/completions", "/v1/completions", "/v1/models", "/generate",
                                 "/load_lora_adapter", "/unload_lora_adapter", "/health", "/metrics"};
  std::string label = "other";
  for (const char* p : kPaths)
    if (path == p) label = p;
  std::lock_guard<std::mutex> lock(mu_);
  ++http_[{label, status}];
}

std::string ServerMetrics::render(const scheduler::SchedulerStats& s, const lora::AdapterRegistry& registry) const {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out += "# HELP hylora_http_requests_total HTTP requests answered, by path and status\n"
           "# TYPE hylora_http_requests_total counter\n";
    for (auto& [k, v] : http_)
      out += "hylora_http_requests_total{path=\"" + k.first + "\",code=\"" + std::to_string(k.second) + "\"} " +
             std::to_string(v) + "\n";
  }
  out += "# HELP hylora_requests_finished_total Generation requests (one per choice) finished, by reason\n"
         "# TYPE hylora_requests_finished_total counter\n";
  out += "hylora_requests_finished_total{reason=\"stop\"} " + std::to_string(s.finished_stop.load()) + "\n";
  out += "hylora_requests_finished_total{reason=\"length\"} " + std::to_string(s.finished_length.load()) + "\n";
  out += "hylora_requests_finished_total{reason=\"abort\"} " + std::to_string(s.finished_abort.load()) + "\n";
  out += "hylora_requests_finished_total{reason=\"error\"} " + std::to_string(s.finished_error.load()) + "\n";
  metric(out, "hylora_prompt_tokens_total", "counter", "Prompt tokens of accepted requests", s.prompt_tokens);
  metric(out, "hylora_generation_tokens_total", "counter", "Tokens generated", s.generated_tokens);
  metric(out, "hylora_queue_waiting", "gauge", "Requests waiting for admission", s.waiting);
  metric(out, "hylora_running_requests", "gauge", "Requests holding a sequence", s.running);
  metric(out, "hylora_step_batch_tokens", "gauge", "Tokens (rows) in the last step", s.last_step_tokens);
  metric(out, "hylora_step_batch_sequences", "gauge", "Sequences in the last step (running batch size)",
         s.last_step_sequences);
  metric(out, "hylora_step_batch_adapters", "gauge", "Distinct adapters in the last step", s.last_step_adapters);
  metric(out, "hylora_steps_total", "counter", "Engine steps run", s.steps);
  metric(out, "hylora_preemptions_total", "counter", "Requests preempted (to be recomputed)", s.preemptions);
  metric(out, "hylora_kv_pages_free", "gauge", "Free KV cache pages", s.free_kv_pages);
  metric(out, "hylora_kv_pages_total", "gauge", "KV cache pages", s.kv_pages_total);
  metric(out, "hylora_sequence_slots_free", "gauge", "Free sequence (state) slots", s.free_sequences);
  metric(out, "hylora_adapter_slots", "gauge", "Adapter slots a step may use (unpinned)", s.adapter_slots_per_step);
  metric(out, "hylora_adapter_slot_loads_total", "counter", "Adapters copied into a slot", s.adapter_slot_loads);
  metric(out, "hylora_adapters_registered", "gauge", "Adapters registered (not unloading)",
         static_cast<double>(registry.list().size()));
  metric(out, "hylora_adapters_in_host_memory", "gauge", "Adapters held in host memory", registry.in_host_memory());
  metric(out, "hylora_adapter_host_loads_total", "counter", "Adapter reads from disk", registry.host_loads());
  metric(out, "hylora_adapter_host_evictions_total", "counter", "Adapters dropped from the host cache (LRU)",
         registry.host_evictions());
  metric(out, "hylora_client_disconnects_total", "counter", "Streaming clients that went away mid-request",
         disconnects);
  ttft.render(out, "hylora_time_to_first_token_seconds", "Time from arrival to the first generated token");
  itl.render(out, "hylora_inter_token_latency_seconds", "Time between consecutive tokens of one request");
  return out;
}

}  // namespace hylora::server
