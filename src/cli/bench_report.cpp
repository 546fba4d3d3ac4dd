#include "cli/bench_report.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace hylora::cli {

namespace {
std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string pct(double v) { return std::isnan(v) ? "–" : fmt("%+.1f%%", 100.0 * v); }
}  // namespace

std::string bench_markdown(const BenchRun& r) {
  std::string s = "# hylora bench: " + r.architecture + " (" + r.config + ")\n\n";
  s += "| | |\n|---|---|\n";
  s += "| card | " + r.card + " |\n";
  if (!r.driver.empty()) s += "| driver | " + r.driver + " |\n";
  s += "| commit | " + r.commit + " |\n";
  s += "| command | `" + r.command + "` |\n";
  s += "| device, dtype | " + r.device + ", " + r.dtype + " |\n";
  s += "| shapes | H " + std::to_string(r.hidden) + ", vocab " + std::to_string(r.vocab) + ", " +
       std::to_string(r.num_layers) + " layers, " + fmt("%.3f", r.weight_bytes / 1e9) + " GB of weights |\n";
  s += "| layers kept | " + r.layers + " |\n";
  s += "| copy bandwidth | " + fmt("%.1f", r.rates.copy_bytes_per_s / 1e9) + " GB/s (read + write, " +
       fmt("%.0f", static_cast<double>(r.rates.copy_bytes) / (1 << 20)) + " MiB copy) |\n";
  s += "| GEMM rate | " + fmt("%.4g", r.rates.gemm_flop_per_s / 1e12) + " TFLOP/s (" + dtype_name(r.rates.gemm_dtype) +
       ", " + std::to_string(r.rates.gemm_size) + "³) |\n";
  s += "| timing | wall clock around Executor::execute (decode: tokens drawn in the step; prefill: logits returned), " + std::to_string(r.warmup) +
       " warm-up + median of " + std::to_string(r.repeats) + " |\n\n";
  s += "| workload | seqs × new tokens | context | adapters × rank | ms / step | tokens/s | GB | GFLOP | bytes floor ms "
       "| FLOP floor ms | measured / floor | LoRA overhead | ideal overhead |\n";
  s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const BenchRow& w : r.rows) {
    s += "| " + w.name + " | " + std::to_string(w.shape.seqs) + " × " + std::to_string(w.shape.new_tokens) + " | " +
         std::to_string(w.shape.context) + " | " +
         (w.shape.adapters ? std::to_string(w.shape.adapters) + " × " + std::to_string(w.shape.rank) : "–") + " | " +
         fmt("%.3f", w.ms_median) + " | " + fmt("%.1f", w.tokens_per_s()) + " | " + fmt("%.4f", w.cost.bytes() / 1e9) +
         " | " + fmt("%.2f", w.cost.flop() / 1e9) + " | " + fmt("%.4f", w.bytes_floor_ms) + " | " +
         fmt("%.4f", w.flop_floor_ms) + " | " + fmt("%.2f", w.ms_median / w.floor_ms()) + " | " +
         pct(w.lora_overhead) + " | " + pct(w.ideal_overhead) + " |\n";
  }
  if (!r.notes.empty()) {
    s += "\nNotes:\n";
    for (const std::string& n : r.notes) s += "* " + n + "\n";
  }
  return s;
}

std::string bench_json(const BenchRun& r) {
  using json = nlohmann::json;
  json j;
  j["tool"] = "hylora";
  j["card"] = r.card;
  j["driver"] = r.driver;
  j["commit"] = r.commit;
  j["command"] = r.command;
  j["device"] = r.device;
  j["dtype"] = r.dtype;
  j["config"] = r.config;
  j["architecture"] = r.architecture;
  j["layers"] = r.layers;
  j["hidden_size"] = r.hidden;
  j["vocab_size"] = r.vocab;
  j["num_layers"] = r.num_layers;
  j["weight_bytes"] = r.weight_bytes;
  j["copy_bytes_per_s"] = r.rates.copy_bytes_per_s;
  j["gemm_flop_per_s"] = r.rates.gemm_flop_per_s;
  j["gemm_dtype"] = dtype_name(r.rates.gemm_dtype);
  j["warmup"] = r.warmup;
  j["repeats"] = r.repeats;
  j["notes"] = r.notes;
  j["workloads"] = json::array();
  for (const BenchRow& w : r.rows) {
    json x;
    x["name"] = w.name;
    x["kind"] = w.kind;
    x["seqs"] = w.shape.seqs;
    x["new_tokens"] = w.shape.new_tokens;
    x["context"] = w.shape.context;
    x["adapters"] = w.shape.adapters;
    x["rank"] = w.shape.rank;
    x["ms"] = w.ms;
    x["ms_median"] = w.ms_median;
    x["tokens_per_s"] = w.tokens_per_s();
    x["bytes"] = w.cost.bytes();
    x["weight_bytes"] = w.cost.weight_bytes;
    x["lora_bytes"] = w.cost.lora_bytes;
    x["cache_bytes"] = w.cost.cache_bytes;
    x["io_bytes"] = w.cost.io_bytes;
    x["flop"] = w.cost.flop();
    x["bytes_floor_ms"] = w.bytes_floor_ms;
    x["flop_floor_ms"] = w.flop_floor_ms;
    x["floor_ms"] = w.floor_ms();
    x["measured_over_floor"] = w.ms_median / w.floor_ms();
    x["baseline"] = w.baseline;
    x["lora_overhead"] = std::isnan(w.lora_overhead) ? json(nullptr) : json(w.lora_overhead);
    x["ideal_overhead"] = std::isnan(w.ideal_overhead) ? json(nullptr) : json(w.ideal_overhead);
    j["workloads"].push_back(x);
  }
  return j.dump(2) + "\n";
}

}  // namespace hylora::cli
