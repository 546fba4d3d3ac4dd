#pragma once
// The record of one `hylora bench` run (docs/performance.md "What a run records"): the setting, the start-up rates,
// and one row per workload with its time, its bytes and FLOP, both floors and the ratios; as a markdown table and
// as JSON (bench/plot_bench.py and the HF comparison read the JSON).
#include <cmath>
#include <string>
#include <vector>

#include "cli/bench_floors.h"
#include "cli/bench_hardware.h"

namespace hylora::cli {

struct BenchRow {
  std::string name;       // e.g. "decode_b64_a8_r16"
  std::string kind;       // "decode" or "prefill"
  StepShape shape;        // context = mean cached tokens over the timed steps
  std::vector<double> ms; // every timed step, milliseconds
  double ms_median = 0;
  StepCost cost;
  double bytes_floor_ms = 0, flop_floor_ms = 0;
  std::string baseline;   // the no-adapter row this one is compared with ("" = none)
  double lora_overhead = NAN, ideal_overhead = NAN;  // measured / baseline − 1, floor / baseline floor − 1 (NaN: none)
  double floor_ms() const { return std::max(bytes_floor_ms, flop_floor_ms); }
  double tokens_per_s() const {
    return static_cast<double>(shape.seqs * shape.new_tokens) / (ms_median / 1000.0);
  }
};

struct BenchRun {
  std::string card, driver, commit, command, device, dtype, config, architecture, layers;
  int64_t hidden = 0, vocab = 0, num_layers = 0;
  double weight_bytes = 0;
  HardwareRates rates;
  int64_t warmup = 0, repeats = 0;
  std::vector<BenchRow> rows;
  std::vector<std::string> notes;  // assumptions and skipped workloads
};

std::string bench_markdown(const BenchRun& run);
std::string bench_json(const BenchRun& run);

}  // namespace hylora::cli
