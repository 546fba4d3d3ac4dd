// hylora bench: real model shapes with random weights, the workloads of docs/performance.md, each timed around
// Executor::execute and set beside its bytes and FLOP floors. A program, not a test: it reports, it does not judge.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "cli/bench_adapters.h"
#include "cli/bench_floors.h"
#include "cli/bench_hardware.h"
#include "cli/bench_report.h"
#include "cli/commands.h"
#include "cli/device_options.h"
#include "engine/executor.h"
#include "models/layer_truncation.h"
#include "ops/device.h"

namespace hylora::cli {

namespace {

struct Workload {
  std::string name, kind;
  StepShape shape;  // context: the cached tokens asked for (decode); 0 for prefill
};

struct Settings {
  int64_t context = 1024, batch = 64, long_prefill = 8192, short_seqs = 16, short_len = 512;
};

// docs/performance.md "Workloads", plus the HF peer's points (batch 1 with one adapter, batch 32 with 8 mixed).
std::vector<Workload> all_workloads(const Settings& s) {
  std::vector<Workload> w;
  auto decode = [&](int64_t b, int64_t a, int64_t r) {
    std::string n = "decode_b" + std::to_string(b) + "_a" + std::to_string(a) + (a ? "_r" + std::to_string(r) : "");
    w.push_back({n, "decode", {b, s.context, 1, a, a ? r : 0}});
  };
  auto prefill = [&](int64_t seqs, int64_t len, int64_t a, int64_t r) {
    std::string n = "prefill_" + std::to_string(seqs) + "x" + std::to_string(len) + "_a" + std::to_string(a) +
                    (a ? "_r" + std::to_string(r) : "");
    w.push_back({n, "prefill", {seqs, 0, len, a, a ? r : 0}});
  };
  decode(1, 0, 0);
  decode(1, 1, 16);
  decode(s.batch, 0, 0);
  for (int64_t r : {16, 64})
    for (int64_t a : {1, 8, 32})
      if (a <= s.batch) decode(s.batch, a, r);
  if (s.batch != 32 && s.batch >= 32) {
    decode(32, 0, 0);
    decode(32, 8, 16);
  }
  prefill(1, s.long_prefill, 0, 0);
  prefill(1, s.long_prefill, 1, 16);
  prefill(s.short_seqs, s.short_len, 0, 0);
  prefill(s.short_seqs, s.short_len, std::min<int64_t>(8, s.short_seqs), 16);
  return w;
}

// "decode" / "prefill" pick a kind, anything else a workload by name; unknown names are an error listing them all.
std::vector<Workload> select(const std::vector<Workload>& all, const std::string& spec) {
  if (spec == "all") return all;
  std::set<std::string> want;
  std::stringstream ss(spec);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) want.insert(item);
  std::vector<Workload> out;
  std::set<std::string> matched;
  for (const Workload& w : all)
    if (want.count(w.kind) || want.count(w.name)) {
      out.push_back(w);
      matched.insert(want.count(w.name) ? w.name : w.kind);
    }
  for (const std::string& item : want)
    if (!matched.count(item)) {
      std::string names;
      for (const Workload& w : all) names += " " + w.name;
      fail("--workloads: unknown workload \"", item, "\"; use decode, prefill, all or one of:", names);
    }
  return out;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string first_line_of(const std::string& command) {
  std::string out;
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[256];
    if (std::fgets(buf, sizeof buf, p)) out = buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// Bytes the adapter slots take on one copy (host; the GPU keeps a mirror): A [slots, r, in] and B [slots, out, r]
// for every LoRA target, experts times E (lora_pool.h).
double lora_pool_bytes(const Model& m, int64_t slots, int64_t rank) {
  double per = 0;
  for (const Linear* l : m.lora_targets().linears)
    for (const LoraSlice& s : l->slices) per += static_cast<double>(l->in_features() + s.out_size);
  for (const ExpertLinear* e : m.lora_targets().experts)
    for (const LoraSlice& s : e->slices)
      per += static_cast<double>(e->num_experts() * (e->in_features() + s.out_size));
  if (const Embedding* e = m.lora_targets().embedding)
    per += static_cast<double>(e->table.dim(0) + e->table.dim(1));
  return per * static_cast<double>(slots * rank) * 4.0;
}

class Bench {
 public:
  Bench(Model& model, const ExecutorOptions& base, const CostModel& costs, const HardwareRates& rates, int64_t warmup,
        int64_t repeats, uint64_t seed, std::string profile_workload)
      : model_(model), base_(base), costs_(costs), rates_(rates), warmup_(warmup), repeats_(repeats), seed_(seed),
        profile_workload_(std::move(profile_workload)) {}

  // Runs `group` (workloads of one adapter rank) on one executor sized for them; rows in workload order.
  std::vector<BenchRow> run_group(const std::vector<Workload>& group, int64_t rank, const Settings& s) {
    int64_t slots = 1, seqs = 1, tokens = 1;
    for (const Workload& w : group) {
      slots = std::max(slots, w.shape.adapters);
      seqs = std::max(seqs, w.shape.seqs);
      tokens = std::max(tokens, w.shape.seqs * w.shape.new_tokens);
    }
    ExecutorOptions o = base_;
    o.max_loras_per_batch = slots;
    o.max_lora_rank = std::max<int64_t>(rank, 1);
    o.max_batch_tokens = std::max<int64_t>(tokens, 4096);
    o.max_sequences = seqs + std::max<int64_t>(s.short_seqs, 1);
    const int64_t steps = (warmup_ + repeats_) * static_cast<int64_t>(group.size());
    o.kv_cache_tokens = seqs * (s.context + steps + o.page_size) + tokens + 64 * o.page_size;
    Executor ex(model_, o);
    std::vector<std::shared_ptr<const lora::NormalizedAdapter>> adapters;
    for (int64_t i = 0; i < (rank > 0 ? slots : 0); ++i)
      adapters.push_back(random_adapter(model_, "bench" + std::to_string(i), rank, seed_ + 1000 * rank + i));
    // Decode sequences: `seqs` of them, prefilled to `context` tokens (not timed), in chunks the step allows.
    std::vector<SeqId> decode_seqs;
    bool any_decode = false;
    for (const Workload& w : group) any_decode = any_decode || w.kind == "decode";
    if (any_decode) {
      for (int64_t i = 0; i < seqs; ++i) decode_seqs.push_back(ex.open_sequence());
      for (int64_t done = 0; done < s.context;) {
        const int64_t chunk = std::min<int64_t>(s.context - done, std::max<int64_t>(1, o.max_batch_tokens / seqs));
        std::vector<SeqWork> works;
        for (SeqId q : decode_seqs) works.push_back({q, tokens_for(chunk), nullptr, RowOutput::kNone});
        ex.execute(works);
        done += chunk;
      }
    }
    std::vector<BenchRow> rows;
    for (const Workload& w : group) {
      BenchRow row;
      row.name = w.name;
      row.kind = w.kind;
      row.shape = w.shape;
      double context_sum = 0;
      for (int64_t it = 0; it < warmup_ + repeats_; ++it) {
        std::vector<SeqWork> works;
        std::vector<SeqId> fresh;
        for (int64_t i = 0; i < w.shape.seqs; ++i) {
          SeqId q = w.kind == "decode" ? decode_seqs[i] : ex.open_sequence();
          if (w.kind != "decode") fresh.push_back(q);
          if (it >= warmup_) context_sum += static_cast<double>(ex.sequence_length(q));
          auto adapter = w.shape.adapters ? adapters[i % w.shape.adapters] : nullptr;  // mixed: row i → i mod a
          works.push_back({q, tokens_for(w.shape.new_tokens), adapter, RowOutput::kLast});
          // A decode step draws its tokens as a server's does (temperature 1, whole vocabulary, with each token's
          // log-probability as a request asking for logprobs; on a GPU only the tokens come back); a prefill step
          // returns its last rows' logits.
          if (w.kind == "decode") works.back().draw = TokenDraw{SamplingParams{}, it, 0, true};
        }
        const bool profiled = it >= warmup_ && w.name == profile_workload_;
        if (profiled) ops::profiler_range(base_.device, true);
        const auto t0 = std::chrono::steady_clock::now();
        StepOutput out = ex.execute(works);
        const double ms = ms_since(t0);
        if (profiled) ops::profiler_range(base_.device, false);
        if (it >= warmup_) row.ms.push_back(ms);
        if (it == 0 || it + 1 == warmup_ + repeats_) check_output(out, w.name);
        for (SeqId q : fresh) ex.release_sequence(q);
      }
      row.shape.context = static_cast<int64_t>(std::llround(context_sum / static_cast<double>(repeats_ * w.shape.seqs)));
      std::vector<double> sorted = row.ms;
      std::sort(sorted.begin(), sorted.end());
      row.ms_median = sorted[sorted.size() / 2];
      StepShape at = row.shape;
      at.adapters = std::min(at.adapters, at.seqs);
      row.cost = costs_.cost(at);
      row.bytes_floor_ms = row.cost.bytes() / rates_.copy_bytes_per_s * 1000.0;
      row.flop_floor_ms = row.cost.flop() / rates_.gemm_flop_per_s * 1000.0;
      rows.push_back(row);
      std::fprintf(stderr, "hylora bench: %-22s %10.3f ms/step  (floor %.3f ms)\n", row.name.c_str(), row.ms_median,
                   row.floor_ms());
    }
    for (SeqId q : decode_seqs) ex.release_sequence(q);
    return rows;
  }

 private:
  // Random token ids (uniform over the vocabulary; the step's cost does not depend on which).
  std::vector<int32_t> tokens_for(int64_t n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) {
      rng_ = rng_ * 6364136223846793005ULL + 1442695040888963407ULL;
      x = static_cast<int32_t>((rng_ >> 33) % static_cast<uint64_t>(model_.vocab_size()));
    }
    return t;
  }
  // A fast wrong answer is no result: the logits of a random model must at least be finite, and a drawn token must
  // be a token with a finite log-probability (a NaN row gives neither).
  void check_output(const StepOutput& out, const std::string& name) const {
    const float* p = out.logits.f32();
    for (int64_t i = 0; i < out.logits.numel(); ++i)
      if (!std::isfinite(p[i]))
        fail("workload ", name, ": logit ", i, " is not finite: the random model overflowed (report this)");
    for (const auto& t : out.drawn)
      if (t && (t->id < 0 || t->id >= model_.vocab_size() || !std::isfinite(t->logprob) || t->logprob > 1e-3))
        fail("workload ", name, ": drew token ", t->id, " with log-probability ", t->logprob,
             ": the step's logits are not a distribution (report this)");
  }

  Model& model_;
  ExecutorOptions base_;
  const CostModel& costs_;
  HardwareRates rates_;
  int64_t warmup_, repeats_;
  uint64_t seed_;
  std::string profile_workload_;  // its timed steps run inside ops::profiler_range (for ncu)
  uint64_t rng_ = 0x853c49e6748fea9bULL;
};

}  // namespace

int run_bench_command(int argc, char** argv) {
  CLI::App app{"Benchmark the engine on a config.json's shapes with random weights: the workloads of "
               "docs/performance.md, each beside its bytes and FLOP floors (measured at start-up).",
               "hylora bench"};
  std::string config_path, workloads = "all", out_md, out_json, card, commit, profile_workload;
  DeviceOptions dev_opts;
  bool random_weights = false;
  int64_t layers = 0, warmup = 2, repeats = 5, copy_mib = 0, gemm_n = 0;
  uint64_t seed = 0;
  double max_pool_gib = 24;
  Settings s;
  app.add_option("--config", config_path, "a model's config.json (e.g. bench/configs/qwen3_5_4b.json)")->required();
  app.add_flag("--random-weights", random_weights, "build the model with seeded random weights (required for now)");
  app.add_option("--seed", seed, "seed of the random weights and adapters");
  app.add_option("--layers", layers, "keep N layers, the mix of layer kinds kept (models that do not fit)")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}));
  add_device_options(app, dev_opts, /*memory_flags=*/false);  // each workload sizes its own KV cache
  app.add_option("--workloads", workloads, "all, decode, prefill, or a comma list of workload names");
  app.add_option("--context", s.context, "decode: tokens cached before the timed steps")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--batch", s.batch, "decode: the large batch (sequences per step)")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  app.add_option("--prefill-long", s.long_prefill, "prefill: tokens of the one long prompt")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--prefill-seqs", s.short_seqs, "prefill: prompts of the batched prefill")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  app.add_option("--prefill-len", s.short_len, "prefill: tokens per prompt of the batched prefill")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--warmup", warmup, "untimed steps per workload")->check(CLI::Range(int64_t{0}, int64_t{1000}));
  app.add_option("--repeats", repeats, "timed steps per workload (the median is reported)")
      ->check(CLI::Range(int64_t{1}, int64_t{10000}));
  app.add_option("--copy-mib", copy_mib, "size of the bandwidth probe's copy (default 1024 on a GPU, 256 on the CPU)")
      ->check(CLI::Range(int64_t{1}, int64_t{65536}));
  app.add_option("--gemm-n", gemm_n, "size of the GEMM probe, M = N = K (default 8192 on a GPU, 1024 on the CPU)")
      ->check(CLI::Range(int64_t{16}, int64_t{65536}));
  app.add_option("--max-lora-pool-gib", max_pool_gib,
                 "skip adapter workloads whose adapter slots would take more (GiB, one copy)");
  app.add_option("--out", out_md, "write the table here (markdown)");
  app.add_option("--json", out_json, "write the results here (JSON)");
  app.add_option("--profile-workload", profile_workload,
                 "bracket this workload's timed steps with cudaProfilerStart/Stop, for "
                 "`ncu --profile-from-start off` (scripts/gpu_profile.sh)");
  app.add_option("--card", card, "the card's name in the record (default: asked from nvidia-smi or /proc/cpuinfo)");
  app.add_option("--commit", commit, "the commit in the record (default: git rev-parse --short HEAD)");
  CLI11_PARSE(app, argc, argv);
  if (!random_weights)
    fail("--random-weights is required: hylora bench builds the model from --config with random weights "
         "(benchmarking a checkpoint is not supported yet)");

  BenchRun run;
  {
    std::string cmd = "hylora bench";
    for (int i = 1; i < argc; ++i) cmd += std::string(" ") + argv[i];
    run.command = cmd;
  }
  const Device dev = dev_opts.device_kind();
  run.device = dev_opts.device;
  run.dtype = dev_opts.dtype;
  run.config = config_path;
  run.card = card.empty() ? card_name(dev) : card;
  if (dev == Device::CUDA)
    run.driver = first_line_of("nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null");
  run.commit = commit.empty() ? first_line_of("git rev-parse --short HEAD 2>/dev/null") : commit;
  if (run.commit.empty()) run.commit = "unknown";
  run.warmup = warmup;
  run.repeats = repeats;

  json config = read_json_file(config_path);
  if (layers > 0) {
    TruncatedConfig t = truncate_layers(config, layers, config_path);
    config = t.config;
    run.layers = t.describe();
  } else {
    run.layers = "all " + std::to_string(layer_kinds(config, config_path).size());
  }
  std::fprintf(stderr, "hylora bench: building %s with random weights (%s)\n", config_path.c_str(),
               run.layers.c_str());
  std::unique_ptr<Model> model = make_model(config, config_path, WeightOrigin::random_weights(seed));
  run.architecture = model->architecture();
  run.hidden = model->hidden_size();
  run.vocab = model->vocab_size();
  run.num_layers = model->num_layers();

  ExecutorOptions base;
  dev_opts.apply(base);
  const double wb = static_cast<double>(dtype_size(base.dtype));

  run.rates = measure_hardware(dev, base.dtype, copy_mib ? copy_mib : (dev == Device::CUDA ? 1024 : 256),
                               gemm_n ? gemm_n : (dev == Device::CUDA ? 8192 : 1024));
  std::fprintf(stderr, "hylora bench: copy %.1f GB/s, GEMM %.2f TFLOP/s\n", run.rates.copy_bytes_per_s / 1e9,
               run.rates.gemm_flop_per_s / 1e12);

  // The cost model before the executor moves the weights (it only reads shapes and storage identity).
  CostModel costs(*model, config, wb);
  run.weight_bytes = costs.total_weight_bytes;
  run.notes.push_back("Adapters: rank r on every projection of the decoder layers (attention, GDN / Mamba2 "
                      "in/out, dense MLP, shared experts), lora_alpha = 2r, B nonzero; not lm_head, embedding, "
                      "routers or routed experts. Several adapters in a step: row i uses adapter i mod n.");
  if (costs.experts_touched(64) > 0)
    run.notes.push_back("MoE weight bytes count the experts some row is routed to, expected under uniform "
                        "routing: E·(1 − (1 − k/E)^rows) per layer (batch 1: k experts).");
  run.notes.push_back("Floors: bytes / copy bandwidth, FLOP / GEMM rate (" + std::string(dtype_name(run.rates.gemm_dtype)) +
                      "); bytes include the float32 logits the step writes. Decode steps draw their tokens inside the step "
                      "(temperature 1, whole vocabulary) and return only those; prefill steps return the last rows' "
                      "logits. Decode context drifts by the "
                      "steps run; the table gives the mean over the timed steps.");

  const std::vector<Workload> chosen = select(all_workloads(s), workloads);
  if (!profile_workload.empty() &&
      std::none_of(chosen.begin(), chosen.end(), [&](const Workload& w) { return w.name == profile_workload; }))
    fail("--profile-workload ", profile_workload, ": not among the workloads run (--workloads ", workloads, ")");
  // One executor per adapter rank (the slots sized for the group); the no-adapter rows run with the first group.
  std::map<int64_t, std::vector<Workload>> groups;
  for (const Workload& w : chosen) groups[w.shape.rank].push_back(w);
  if (groups.count(0) && groups.size() > 1) {
    auto& first = groups.upper_bound(0)->second;
    first.insert(first.begin(), groups[0].begin(), groups[0].end());
    groups.erase(0);
  }
  Bench bench(*model, base, costs, run.rates, warmup, repeats, seed, profile_workload);
  for (auto& [rank, group] : groups) {
    int64_t slots = 1;
    for (const Workload& w : group) slots = std::max(slots, w.shape.adapters);
    const double pool = lora_pool_bytes(*model, slots, std::max<int64_t>(rank, 1));
    if (pool > max_pool_gib * double(1 << 30)) {
      std::vector<Workload> kept;
      for (const Workload& w : group)
        if (w.shape.adapters == 0) kept.push_back(w);
      char buf[256];
      std::snprintf(buf, sizeof buf, "rank-%lld adapter workloads skipped: %lld adapter slots at rank %lld take "
                    "%.1f GiB (every LoRA target at max rank, experts included; over --max-lora-pool-gib %.0f)",
                    static_cast<long long>(rank), static_cast<long long>(slots), static_cast<long long>(rank),
                    pool / double(1 << 30), max_pool_gib);
      run.notes.push_back(buf);
      std::fprintf(stderr, "hylora bench: %s\n", buf);
      if (kept.empty()) continue;
      group = kept;
    }
    for (BenchRow& r : bench.run_group(group, rank, s)) run.rows.push_back(std::move(r));
  }
  // Each adapter row against the no-adapter row of the same step shape.
  for (BenchRow& r : run.rows) {
    if (r.shape.adapters == 0) continue;
    for (const BenchRow& b : run.rows)
      if (b.shape.adapters == 0 && b.kind == r.kind && b.shape.seqs == r.shape.seqs &&
          b.shape.new_tokens == r.shape.new_tokens) {
        r.baseline = b.name;
        r.lora_overhead = r.ms_median / b.ms_median - 1.0;
        r.ideal_overhead = r.floor_ms() / b.floor_ms() - 1.0;
      }
  }
  const std::string md = bench_markdown(run);
  std::fputs(md.c_str(), stdout);
  auto write = [](const std::string& path, const std::string& text) {
    std::ofstream f(path);
    if (!f) fail("cannot write ", path);
    f << text;
    if (!f) fail("cannot write ", path);
  };
  if (!out_md.empty()) write(out_md, md);
  if (!out_json.empty()) write(out_json, bench_json(run));
  return 0;
}

}  // namespace hylora::cli
