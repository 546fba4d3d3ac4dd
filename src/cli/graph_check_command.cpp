// `hylora graph-check FIXTURES_DIR [--dtype float32|bfloat16]` (hidden; GPU machine): decode steps replayed as CUDA
// graphs give the logits of the same steps run eagerly. Per golden fixture (model + PEFT adapters), three executors
// get the same steps: --cuda-graphs off (eager, unpadded), pad-only (padded to the bucket, eager) and on (padded,
// captured, replayed). Sequences are prefilled, then decoded while the batch size, the adapter of each sequence (so
// the slots, ranks and segment count), the contexts and the page tables change between steps; a bucket is reused with
// fewer live sequences, a sequence is released and a new, longer one prefilled midway (state slot reuse, a larger
// scratch arena: graphs dropped and recaptured). Checks, per fixture:
//   graph == pad-only bit for bit (same kernels on the same padded arrays: a capture or replay fault shows here);
//   graph vs off: max |Δlogit| ≤ 1e-4 (fp32) / 1e-2 (bf16): padding changes the GEMMs' row count, which may change
//   cuBLASLt's algorithm and so the rounding, never the math; the measured maximum is printed;
//   the graph executor captured and replayed (or, with a modules_to_save adapter, replayed nothing: eager fallback).
// Prints one PASS/FAIL line per check and exits 1 when any failed.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/executor.h"
#include "lora/normalized_adapter.h"

namespace hylora::cli {

namespace {

struct Case {
  std::string fixture;
  std::vector<std::string> adapters;
  bool expect_graphs = true;  // false: an adapter with modules_to_save keeps every step eager
};

int64_t max_lora_rank_of(const std::string& dir) {
  std::ifstream f(dir + "/case.json");
  if (!f) return 64;
  const nlohmann::json c = nlohmann::json::parse(f);
  const auto& args = c.value("score_args", nlohmann::json::array());
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--max-lora-rank") return std::stoll(args[i + 1].get<std::string>());
  return 64;
}

struct Result {
  bool ok = true;
};

void report(Result& r, bool pass, const std::string& what) {
  std::printf("%s %s\n", pass ? "PASS" : "FAIL", what.c_str());
  std::fflush(stdout);
  r.ok = r.ok && pass;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return INFINITY;
  double m = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = std::fabs(static_cast<double>(a.f32()[i]) - b.f32()[i]);
    if (!(d <= m)) m = d;  // NaN propagates
  }
  return m;
}

void run_case(const Case& c, const std::string& root, DType dtype, Result& res) {
  const std::string dir = root + "/" + c.fixture;
  ExecutorOptions o;
  o.device = Device::CUDA;
  o.dtype = dtype;
  o.max_lora_rank = max_lora_rank_of(dir);
  o.max_loras_per_batch = 3;  // fewer slots than adapters + churn: slots are reassigned between steps
  o.max_sequences = 32;
  o.kv_cache_tokens = 8192;
  o.page_size = 4;  // page tables grow within the run: several page-width buckets
  o.mem_fraction = 0.3;
  std::vector<std::unique_ptr<Executor>> ex;
  for (CudaGraphs g : {CudaGraphs::kOff, CudaGraphs::kPadOnly, CudaGraphs::kDecode}) {
    o.cuda_graphs = g;
    ex.push_back(std::make_unique<Executor>(dir + "/model", o));
  }
  std::vector<std::shared_ptr<const lora::NormalizedAdapter>> adapters{nullptr};  // base
  for (const std::string& a : c.adapters) adapters.push_back(ex[0]->load_adapter(a, dir + "/adapters/" + a));
  const int64_t vocab = ex[0]->info().vocab_size;
  std::mt19937 rng(1234);
  auto rand_tokens = [&](int64_t n) {
    std::vector<int32_t> t(n);
    for (auto& x : t) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
    return t;
  };
  double worst_pad = 0.0, worst_off = 0.0;
  int64_t steps = 0;
  // One step on all three executors; returns whether pad-only and graph agree bit for bit.
  auto step = [&](const std::vector<SeqWork>& works) {
    std::vector<StepOutput> out;
    for (auto& e : ex) out.push_back(e->execute(works));
    worst_off = std::max(worst_off, max_abs_diff(out[2].logits, out[0].logits));
    worst_pad = std::max(worst_pad, max_abs_diff(out[2].logits, out[1].logits));
    ++steps;
  };
  auto open = [&] {
    SeqId id = -1;
    for (auto& e : ex) id = e->open_sequence();  // same id in each (same open/release order)
    return id;
  };
  // At most max_loras_per_batch distinct adapters in one step (fixtures have up to 5): the rest run on the base model.
  auto cap_adapters = [&](std::vector<SeqWork>& works) {
    std::vector<const void*> used;
    for (SeqWork& w : works)
      if (w.adapter && std::find(used.begin(), used.end(), w.adapter.get()) == used.end()) {
        if (static_cast<int64_t>(used.size()) == o.max_loras_per_batch) w.adapter = nullptr;
        else used.push_back(w.adapter.get());
      }
  };
  // 11 sequences, prefilled in one step, each with its adapter.
  std::vector<SeqId> live;
  std::vector<SeqWork> prefill;
  for (int i = 0; i < 11; ++i) {
    live.push_back(open());
    prefill.push_back({live.back(), rand_tokens(3 + 2 * i), adapters[i % adapters.size()], RowOutput::kLast});
  }
  cap_adapters(prefill);
  step(prefill);
  // Decode steps: batch sizes over several buckets (7 then 5 share bucket 8; 3 then 4 share bucket 4), adapters
  // drawn per step so that the mix, slots and segment count change.
  const std::vector<int> sizes = {11, 7, 5, 3, 4, 1, 2, 8, 6, 11, 9, 16, 5, 5, 7, 3, 11, 1, 4, 8};
  for (size_t k = 0; k < 2 * sizes.size(); ++k) {  // twice: shapes recur, so graphs are replayed, not only captured
    if (k == 9) {
      // Release one sequence and prefill a longer one alone (slot reuse, a bigger scratch high-water mark).
      for (auto& e : ex) e->release_sequence(live[3]);
      live[3] = open();
      step({{live[3], rand_tokens(57), adapters[1 % adapters.size()], RowOutput::kLast}});
    }
    if (k == 11)
      while (static_cast<int>(live.size()) < 16) {
        live.push_back(open());
        step({{live.back(), rand_tokens(5), nullptr, RowOutput::kLast}});
      }
    std::vector<SeqId> order = live;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<SeqWork> works;
    for (int i = 0; i < sizes[k % sizes.size()] && i < static_cast<int>(order.size()); ++i)
      works.push_back({order[i], rand_tokens(1), adapters[rng() % adapters.size()], RowOutput::kLast});
    cap_adapters(works);
    step(works);
  }
  const CudaGraphStats s = ex[2]->cuda_graph_stats();
  const std::string name = c.fixture + " (" + dtype_name(dtype) + ", adapters";
  std::string list;
  for (const auto& a : c.adapters) list += " " + a;
  const std::string tag = name + list + ")";
  char buf[256];
  std::snprintf(buf, sizeof buf, ": %lld steps, graph vs pad-only max |dlogit| %.3g", static_cast<long long>(steps),
                worst_pad);
  report(res, worst_pad == 0.0, tag + buf);
  const double tol = dtype == DType::F32 ? 1e-4 : 1e-2;
  std::snprintf(buf, sizeof buf, ": graph vs eager unpadded max |dlogit| %.3g (tolerance %.0e)", worst_off, tol);
  report(res, worst_off <= tol, tag + buf);
  std::snprintf(buf, sizeof buf,
                ": warm-ups %lld, captures %lld, replays %lld, eager %lld, dropped %lld, graphs held %lld",
                static_cast<long long>(s.warmups), static_cast<long long>(s.captures),
                static_cast<long long>(s.replays), static_cast<long long>(s.eager), static_cast<long long>(s.dropped),
                static_cast<long long>(s.graphs));
  report(res, c.expect_graphs ? s.captures > 0 && s.replays > s.captures && s.eager == 0 : s.replays == 0,
         tag + buf + (c.expect_graphs ? "" : " (modules_to_save: eager expected)"));
}

}  // namespace

int run_graph_check_command(int argc, char** argv) {
  CLI::App app{"CUDA-graph decode steps vs eager on golden fixtures (GPU)", "hylora graph-check"};
  std::string root, dtype = "float32";
  app.add_option("fixtures", root, "tests/fixtures")->required();
  app.add_option("--dtype", dtype, "float32 or bfloat16")->check(CLI::IsMember({"float32", "bfloat16"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const std::vector<Case> cases = {
      {"qwen3_5_causal_lora", {"full_r16", "mixed_r4"}, true},
      {"nemotron_h_lora", {"nh_full", "nh_r16", "nh_out_proj", "nh_full_backbone"}, true},
      {"qwen3_5_moe_lora", {"moe_full", "moe_experts", "moe_router", "moe_down_only"}, true},
      {"qwen3_5_causal_lora", {"partial", "mixed_r4"}, false},
  };
  Result res;
  for (const Case& c : cases) {
    try {
      run_case(c, root, dtype == "bfloat16" ? DType::BF16 : DType::F32, res);
    } catch (const std::exception& e) {
      report(res, false, c.fixture + ": " + e.what());
    }
  }
  std::printf("graph-check: %s\n", res.ok ? "all passed" : "FAILED");
  return res.ok ? 0 : 1;
}

}  // namespace hylora::cli
