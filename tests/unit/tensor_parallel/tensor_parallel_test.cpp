// Tensor parallelism on the CPU (docs/multi_gpu.md §6): each golden fixture is scored unsharded and as tp = 2 and
// tp = 4 ranks — N threads, each with its own shard model (dist/shard_model.h: only its rows / columns of every
// sharded tensor) and its own executor, talking only through the in-process communicator — base and with every
// adapter (cut per rank by lora/shard_adapter.h). Rank 0's logprobs must equal the unsharded ones within 1e-4 (and
// the float64 references within the fixture's limit); every rank must see the same logits. Plans that do not
// divide are refused with the plan's message; a rank given another rank's adapter shard is caught.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>

#include <unistd.h>

#include "../fixture_support.h"
#include "dist/in_process_communicator.h"
#include "dist/model_shard_specs.h"
#include "dist/shard_model.h"
#include "dist/shard_weight_source.h"
#include "engine/executor.h"
#include "engine/rank_channel.h"
#include "lora/adapter_loader.h"
#include "engine/scorer.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "lora/shard_adapter.h"
#include "models/model.h"

namespace {

using namespace hylora;
using fixtures::json;
namespace fs = std::filesystem;

struct Fixture {
  fs::path dir;
  std::map<std::string, fs::path> adapters;
  ExecutorOptions options;
  std::vector<ScoreRequest> requests;
  std::vector<std::vector<double>> expected;  // float64 references
  double limit = 1e-3;                        // the fixture's own limit vs the references
  // tp vs unsharded: 1e-4 (issue 8 item 4), or the fixture's own float32 error vs float64 where that is larger
  // (qwen3_5_moe_cg_per_expert: 1.4e-4 measured on this schedule), i.e. "within float32 rounding" of the fixture.
  double tp_tolerance = 1e-4;
};

Fixture read_fixture(const std::string& name) {
  Fixture f;
  f.dir = fixtures::kRoot / name;
  const json c = fixtures::read_json(f.dir / "case.json");
  const json adapters = c.value("adapters", json::object());  // a named copy: items() of a temporary dangles
  for (auto& [n, p] : adapters.items()) f.adapters[n] = f.dir / p.get<std::string>();
  std::vector<std::string> args;
  for (auto& a : c.value("score_args", json::array())) args.push_back(a.get<std::string>());
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--max-lora-rank") f.options.max_lora_rank = std::stoll(args[i + 1]);
    if (args[i] == "--max-loras-per-batch") f.options.max_loras_per_batch = std::stoll(args[i + 1]);
  }
  for (auto& r : fixtures::read_jsonl(f.dir / "requests.jsonl")) {
    ScoreRequest q;
    q.id = r.at("id").get<std::string>();
    q.input_ids = r.at("input_ids").get<std::vector<int32_t>>();
    if (r.contains("lora") && !r["lora"].is_null()) q.lora = r["lora"].get<std::string>();
    f.requests.push_back(q);
  }
  for (auto& e : fixtures::read_jsonl(f.dir / "expected.jsonl"))
    f.expected.push_back(e.at("logprobs").get<std::vector<double>>());
  f.limit = fixtures::max_limit({name, f.dir});
  const json lim = fixtures::read_json(f.dir / "limits.json").at("schedules").at("chunked_37_in_64");
  f.tp_tolerance = std::max(1e-4, lim.at("measured").get<double>());
  return f;
}

// Small mixed steps (several sequences and adapters per step, prefill split across steps): the schedule exercises
// state carried between steps on every rank.
const ScoreOptions kSchedule{64, 37};

std::string model_dir(const Fixture& f) { return (f.dir / "model").string(); }

// Unsharded: the reference, and the whole adapters every rank cuts its shard from.
struct Whole {
  std::unique_ptr<Model> model;
  std::unique_ptr<Executor> ex;
  AdapterSet adapters;
  std::vector<ScoreResult> results;
};

Whole run_whole(const Fixture& f) {
  Whole w;
  w.model = load_model(model_dir(f));
  w.ex = std::make_unique<Executor>(*w.model, f.options);
  for (auto& [n, d] : f.adapters) w.adapters[n] = w.ex->load_adapter(n, d.string());
  w.results = score_requests(*w.ex, f.requests, kSchedule, w.adapters);
  return w;
}

// How the ranks are driven. kLeader is the product path (engine/rank_channel.h): rank 0 alone loads adapters and
// scores, its executor sends every call to the other ranks, which follow; only rank 0 returns results. kEveryRank:
// every rank's executor is given the same calls by the test (so every rank returns its logits, and a test can give a
// rank a wrong adapter shard).
enum class Drive { kLeader, kEveryRank };

// tp ranks as threads; rank r's adapters are read from the fixture's files against the whole model's shapes and cut
// for rank adapter_rank(r) (r itself unless a test breaks it), and `breakage` (tests of the test) may alter a rank's
// shard model before its executor is built.
using Breakage = std::function<void(Model&, int rank)>;
std::vector<std::vector<ScoreResult>> run_sharded(const Fixture& f, int tp, int ep, Drive drive,
                                                  const std::function<int(int)>& adapter_rank = [](int r) { return r; },
                                                  const Breakage& breakage = {}) {
  const dist::ShardPlan plan =
      dist::make_shard_plan(dist::model_shard_spec_from_file(model_dir(f) + "/config.json"), tp, ep);
  std::vector<std::vector<ScoreResult>> out(tp);
  dist::run_ranks(tp, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    std::unique_ptr<Model> m = dist::load_model_shard(model_dir(f), plan, r);
    if (breakage) breakage(*m, r);
    ExecutorOptions o = f.options;
    o.communicator = &comm;
    o.shard_plan = &plan;
    Executor ex(*m, o);
    if (drive == Drive::kLeader) {
      if (r != 0) return follow_leader(ex, comm);
      LeaderChannel channel(comm);
      ex.lead(&channel);
      AdapterSet mine;
      for (auto& [n, d] : f.adapters) mine[n] = ex.load_adapter(n, d.string());
      out[0] = score_requests(ex, f.requests, kSchedule, mine);
      channel.stop();
      return;
    }
    AdapterSet mine;
    for (auto& [n, d] : f.adapters) {
      if (adapter_rank(r) == r) {
        mine[n] = ex.load_adapter(n, d.string());
        continue;
      }
      const lora::TargetIndex whole(*m, lora::whole_target_shapes(m->lora_targets(), plan));
      const auto a = lora::load_adapter(n, d.string(), whole, o.max_lora_rank);
      mine[n] = lora::shard_adapter(*a, m->lora_targets(), plan, adapter_rank(r));
    }
    out[r] = score_requests(ex, f.requests, kSchedule, mine);
  });
  return out;
}

// max |a − b| over every request of `lora` ("" = base), or over all when `lora` is null.
double max_diff(const std::vector<ScoreRequest>& reqs, const std::vector<ScoreResult>& a,
                const std::vector<std::vector<double>>& b, const std::string* lora) {
  double worst = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (lora && reqs[i].lora.value_or("") != *lora) continue;
    EXPECT_TRUE(a[i].error.empty()) << a[i].error;
    EXPECT_EQ(a[i].logprobs.size(), b[i].size()) << reqs[i].id;
    for (size_t k = 0; k < std::min(a[i].logprobs.size(), b[i].size()); ++k) {
      const double d = std::fabs(a[i].logprobs[k] - b[i][k]);
      worst = std::isnan(d) ? INFINITY : std::max(worst, d);
    }
  }
  return worst;
}

std::vector<std::vector<double>> logprobs_of(const std::vector<ScoreResult>& rs) {
  std::vector<std::vector<double>> out;
  for (auto& r : rs) out.push_back(r.logprobs);
  return out;
}

struct Param {
  std::string fixture;
  int tp, ep;
};
std::string name_of(const Param& p) {
  return p.fixture + "_tp" + std::to_string(p.tp) + (p.ep > 1 ? "_ep" + std::to_string(p.ep) : "");
}
void PrintTo(const Param& p, std::ostream* os) { *os << name_of(p); }

class TensorParallelGolden : public ::testing::TestWithParam<Param> {};

// Rank 0 of `tp` ranks (ep groups) against the unsharded run, base and every adapter; against the float64
// references too when the fixture has them (a derived fixture, below, has none).
void expect_sharded_equals_unsharded(const Fixture& f, const Param& p) {
  const Whole w = run_whole(f);
  if (!f.expected.empty()) {
    ASSERT_LE(max_diff(f.requests, w.results, f.expected, nullptr), f.limit) << "the unsharded run itself";
  }
  // Sharding changes the order of float32 sums (partial GEMMs, then the all-reduce). With the default BLAS kernels
  // the difference stays within tp_tolerance (1e-4, or the fixture's measured float32 error); other OpenBLAS kernel
  // sets (scripts/test.sh reruns the suite under Haswell and Prescott) round differently, and Haswell reaches 2.8e-4 on
  // qwen3_5_moe_cg_per_expert at tp 4, whose float32 error is 1.4e-4. So under a non-default OPENBLAS_CORETYPE the
  // bound is the fixture's own float32 limit vs float64 (4× its measured error), the bound every other path of the
  // fixture meets; a broken shard is off by > 1e-2 either way (the breakage tests below).
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  const double tolerance = coretype && *coretype ? std::max(f.tp_tolerance, f.limit) : f.tp_tolerance;
  const auto ranks = run_sharded(f, p.tp, p.ep, Drive::kLeader);
  const auto ref = logprobs_of(w.results);
  std::vector<std::string> groups{""};
  for (auto& [n, d] : f.adapters) groups.push_back(n);
  for (const std::string& g : groups) {
    bool used = false;
    for (auto& q : f.requests) used |= q.lora.value_or("") == g;
    ASSERT_TRUE(used) << "no request for " << (g.empty() ? "the base model" : g);
    const double d = max_diff(f.requests, ranks[0], ref, &g);
    EXPECT_LE(d, tolerance) << name_of(p) << " " << (g.empty() ? "base" : g);
    std::printf("[tp] %-30s %-22s max|dlogprob| vs unsharded = %.3g\n", name_of(p).c_str(),
                g.empty() ? "base" : g.c_str(), d);
  }
  if (!f.expected.empty()) {
    EXPECT_LE(max_diff(f.requests, ranks[0], f.expected, nullptr), f.limit) << "vs the float64 references";
  }
}

TEST_P(TensorParallelGolden, EqualsUnshardedBaseAndEveryAdapter) {
  const Param p = GetParam();
  expect_sharded_equals_unsharded(read_fixture(p.fixture), p);
}

// Dense fixtures at tp 2 and 4; MoE fixtures also with whole experts per rank (ep = tp) besides experts split by
// intermediate size (ep = 1); Nemotron-H at tp 2 only (n_groups = 2; tp 4 is refused, below).
std::vector<Param> params() {
  std::vector<Param> out;
  // tp 1 through the shard path (plan, per-rank config, binding, a communicator of one): nothing assumes N > 1.
  for (const char* f : {"qwen3_5_causal_lora", "qwen3_5_moe_lora", "nemotron_h_lora", "deepseek_v3_lora"})
    out.push_back({f, 1, 1});
  for (const char* f : {"qwen3_5_causal_lora", "qwen3_5_cg_lora", "qwen3_5_causal_bf16", "qwen3_5_cg_tied_sharded",
                        "qwen3_5_lora_spellings", "qwen3_causal", "qwen3_lora"})
    for (int tp : {2, 4}) out.push_back({f, tp, 1});
  for (const char* f : {"qwen3_5_moe_lora", "qwen3_5_moe_cg_per_expert", "qwen3_5_moe_causal_fused", "qwen3_moe_causal",
                        "qwen3_moe_lora"})
    for (int tp : {2, 4})
      for (int ep : {1, tp}) out.push_back({f, tp, ep});
  for (const char* f : {"nemotron_h", "nemotron_h_lora", "nemotron_h_embed_lora", "nemotron_h_latent",
                        "nemotron_h_latent_lora"})
    for (int ep : {1, 2}) out.push_back({f, 2, ep});
  // DeepSeek-V3 (8 routed experts): experts split by intermediate size (ep 1), whole per rank (ep = tp), and two ep
  // groups of two ranks each (tp 4, ep 2); the shared experts split over every rank in each case (§2.3).
  for (const char* f : {"deepseek_v3_lora", "deepseek_v3_qlora", "deepseek_v3_no_qlora", "deepseek_v3_noq_lora",
                        "deepseek_v3_embed_lora"})
    for (int tp : {2, 4})
      for (int ep : {1, 2, 4})
        if (ep <= tp) out.push_back({f, tp, ep});
  return out;
}
std::string param_name(const ::testing::TestParamInfo<Param>& i) { return name_of(i.param); }
INSTANTIATE_TEST_SUITE_P(Fixtures, TensorParallelGolden, ::testing::ValuesIn(params()), param_name);

// Through the leader channel a failed call fails alone: a missing adapter directory fails the load on every rank
// (rank 0 reports its own message), a step with a token outside the vocabulary fails on rank 0 (and, swallowed, on
// the follower) before anything changed; then pin, score, unpin and evict run on, and the scores equal the
// unsharded run.
TEST(TensorParallelLeader, FailedCallsFailAloneAndTheGroupGoesOn) {
  const Fixture f = read_fixture("qwen3_5_causal_lora");
  const Whole w = run_whole(f);
  const dist::ShardPlan plan =
      dist::make_shard_plan(dist::model_shard_spec_from_file(model_dir(f) + "/config.json"), 2, 1);
  std::vector<ScoreResult> got;
  std::string load_error, step_error;
  int32_t slot_pinned = -1, slot_after_evict = 0;
  dist::run_ranks(2, [&](dist::Communicator& comm) {
    std::unique_ptr<Model> m = dist::load_model_shard(model_dir(f), plan, comm.rank());
    ExecutorOptions o = f.options;
    o.communicator = &comm;
    o.shard_plan = &plan;
    Executor ex(*m, o);
    if (comm.rank() != 0) return follow_leader(ex, comm);
    LeaderChannel channel(comm);
    ex.lead(&channel);
    try {
      ex.load_adapter("broken", (f.dir / "no-such-adapter").string());
    } catch (const Error& e) {
      load_error = e.what();
    }
    const SeqId s = ex.open_sequence();
    try {
      ex.execute({{s, {static_cast<int32_t>(ex.info().vocab_size)}, nullptr, RowOutput::kLast}});
    } catch (const Error& e) {
      step_error = e.what();
    }
    ex.release_sequence(s);
    AdapterSet mine;
    for (auto& [n, d] : f.adapters) mine[n] = ex.load_adapter(n, d.string());
    const auto first = mine.begin()->second;
    ex.pin_adapter(first);
    slot_pinned = ex.adapter_slot(*first);
    got = score_requests(ex, f.requests, kSchedule, mine);
    ex.unpin_adapter(*first);
    ex.evict_adapter(*first);
    slot_after_evict = ex.adapter_slot(*first);
    channel.stop();
  });
  EXPECT_NE(load_error.find("adapter \"broken\""), std::string::npos) << load_error;
  EXPECT_NE(step_error.find("outside the vocabulary"), std::string::npos) << step_error;
  EXPECT_GE(slot_pinned, 0);
  EXPECT_EQ(slot_after_evict, -1);
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  const double tolerance = coretype && *coretype ? std::max(f.tp_tolerance, f.limit) : f.tp_tolerance;
  EXPECT_LE(max_diff(f.requests, got, logprobs_of(w.results), nullptr), tolerance);
}

// Every rank run with the same calls gathers the same logits as rank 0 (the all-gather of the vocabulary-split
// lm_head), and the leader-driven run gives rank 0 exactly those logits: the followers ran the same steps.
TEST(TensorParallelRanks, EveryRankGathersTheSameLogitsAndTheLeaderDrivenRunMatches) {
  const Fixture f = read_fixture("qwen3_5_moe_lora");
  const auto every = run_sharded(f, 2, 2, Drive::kEveryRank);
  const auto led = run_sharded(f, 2, 2, Drive::kLeader);
  EXPECT_EQ(max_diff(f.requests, every[1], logprobs_of(every[0]), nullptr), 0.0);
  EXPECT_EQ(max_diff(f.requests, led[0], logprobs_of(every[0]), nullptr), 0.0);
}

// The test can fail: rank r holding rank (r + 1)'s adapter shard (B rows / A columns of another rank) must be
// caught on the adapter requests, while the base requests stay exact.
TEST(TensorParallelBroken, AnotherRanksAdapterShardIsCaught) {
  const Fixture f = read_fixture("qwen3_5_causal_lora");
  const Whole w = run_whole(f);
  const auto ranks = run_sharded(f, 2, 1, Drive::kEveryRank, [](int r) { return (r + 1) % 2; });
  const auto ref = logprobs_of(w.results);
  const std::string base;
  EXPECT_LE(max_diff(f.requests, ranks[0], ref, &base), 1e-4);
  for (auto& [n, d] : f.adapters) EXPECT_GT(max_diff(f.requests, ranks[0], ref, &n), 1e-2) << n;
}

// A row-parallel projection left unreduced (each rank keeps its partial o_proj sum), or a rank's embedding shifted
// to another rank's vocabulary, must be caught on the base requests.
TEST(TensorParallelBroken, UnreducedRowProjectionOrShiftedVocabularyIsCaught) {
  const Fixture f = read_fixture("qwen3_5_causal_bf16");
  const Whole w = run_whole(f);
  const auto ref = logprobs_of(w.results);
  const std::string base;
  const auto unreduced = run_sharded(f, 2, 1, Drive::kEveryRank, [](int r) { return r; }, [](Model& m, int) {
    for (Linear* l : m.lora_targets().linears)
      if (l->name.find("o_proj") != std::string::npos) l->tp = TpRole::kLocal;
  });
  EXPECT_GT(max_diff(f.requests, unreduced[0], ref, &base), 1e-2);
  const auto shifted = run_sharded(f, 2, 1, Drive::kEveryRank, [](int r) { return r; }, [](Model& m, int r) {
    Embedding* e = m.lora_targets().embedding;
    e->vocab_begin = (1 - r) * e->table.dim(0);  // the other rank's range
  });
  EXPECT_GT(max_diff(f.requests, shifted[0], ref, &base), 1e-2);
}

// DeepSeek-V3 under --ep: the routed experts are whole per rank (moe_intermediate_size stays 32 at ep = tp) while
// the shared experts (moe_intermediate_size × n_shared_experts wide in config.json) are split over every rank, so
// the per-rank config carries their width in a field of its own. Without it the rank's model would size its shared
// experts from the product of the per-rank fields, and loading is refused naming them (what happened before the
// field existed), never a wrong answer.
TEST(TensorParallelShardConfig, DeepSeekSharedExpertsHaveTheirOwnPerRankWidthUnderEp) {
  const std::string dir = (fixtures::kRoot / "deepseek_v3_lora" / "model").string();
  const json whole = fixtures::read_json(dir + "/config.json");
  for (const auto& [tp, ep] : std::vector<std::pair<int, int>>{{2, 2}, {4, 2}, {4, 4}, {4, 1}}) {
    const dist::ShardPlan plan = dist::make_shard_plan(dist::model_shard_spec_from_file(dir + "/config.json"), tp, ep);
    for (int r = 0; r < tp; ++r) {
      const json local = dist::local_config(whole, plan, r);
      EXPECT_EQ(local.at("moe_intermediate_size").get<int64_t>(), 32 * ep / tp) << tp << "/" << ep;
      EXPECT_EQ(local.at("shared_experts_intermediate_size").get<int64_t>(), 32 / tp) << tp << "/" << ep;
      EXPECT_EQ(local.at("intermediate_size").get<int64_t>(), 96 / tp);
      EXPECT_EQ(local.at("num_attention_heads").get<int64_t>(), 4 / tp);
    }
  }
  const dist::ShardPlan plan = dist::make_shard_plan(dist::model_shard_spec_from_file(dir + "/config.json"), 2, 2);
  json local = dist::local_config(whole, plan, 1);
  local.erase("shared_experts_intermediate_size");
  WeightOrigin origin = WeightOrigin::checkpoint(dir);
  origin.wrap = [&plan](std::unique_ptr<WeightSource> w) { return dist::shard_weights(std::move(w), plan, 1); };
  try {
    make_model(local, dir + "/config.json", origin);
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shared_experts"), std::string::npos) << e.what();
  }
}

// Head / group counts that do not divide get the plan's refusal, naming the config field and the projection.
TEST(TensorParallelRefusal, CountsThatDoNotDivideAreRefused) {
  auto message = [](const std::string& fixture, int tp) {
    const std::string cfg = (fixtures::kRoot / fixture / "model" / "config.json").string();
    try {
      dist::make_shard_plan(dist::model_shard_spec_from_file(cfg), tp);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // The vocabulary (512) is split unevenly over 3 ranks; the GDN key heads (2) can be neither split nor replicated.
  const std::string q = message("qwen3_5_causal_lora", 3);
  EXPECT_NE(q.find("--tp 3: linear_num_key_heads = 2 is neither divisible by 3"), std::string::npos) << q;
  const std::string n = message("nemotron_h_lora", 4);  // n_groups = 2: Mamba2 groups are never replicated
  EXPECT_NE(n.find("n_groups = 2 is not divisible by 4"), std::string::npos) << n;
}

// A vocabulary that does not divide by the ranks (multi_gpu.md §2.1): a golden fixture cut to `V` tokens — the
// embedding table, lm_head, and every adapter tensor of the embedding or the head (embedding LoRA A, lm_head LoRA
// B, modules_to_save lm_head, PEFT's saved base copies) truncated to their first V rows or columns, request ids
// taken mod V — written to `out`. A model of its own (no float64 references): sharded vs unsharded is the check.
Fixture truncate_vocabulary(const Fixture& f, int64_t V, const fs::path& out) {
  const json cfg = fixtures::read_json(f.dir / "model" / "config.json");
  const bool nested = cfg.contains("text_config");
  const int64_t V0 = (nested ? cfg["text_config"] : cfg).at("vocab_size").get<int64_t>();
  EXPECT_LT(V, V0);
  auto rewrite_dir = [&](const fs::path& from, const fs::path& to) {
    fs::create_directories(to);
    for (const auto& e : fs::directory_iterator(from)) {
      const fs::path dst = to / e.path().filename();
      if (e.path().extension() != ".safetensors") {
        fs::copy_file(e.path(), dst, fs::copy_options::overwrite_existing);
        continue;
      }
      const Checkpoint ck = Checkpoint::open_file(e.path().string());
      std::map<std::string, Tensor> tensors;
      for (const auto& [name, info] : ck.tensors()) {
        Tensor t = tensor_to_f32(info);
        const bool vocab = name.find("embed") != std::string::npos || name.find("lm_head") != std::string::npos;
        if (vocab && t.ndim() == 2 && (t.dim(0) == V0 || t.dim(1) == V0)) {
          const int64_t rows = t.dim(0) == V0 ? V : t.dim(0), cols = t.dim(1) == V0 ? V : t.dim(1);
          Tensor c = Tensor::empty({rows, cols});
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) c.f32()[i * cols + j] = t.f32()[i * t.dim(1) + j];
          t = c;
        }
        tensors[name] = t;
      }
      write_safetensors(dst.string(), tensors);
    }
  };
  Fixture g = f;
  g.dir = out;
  rewrite_dir(f.dir / "model", out / "model");
  json c = cfg;
  (nested ? c["text_config"] : c)["vocab_size"] = V;
  std::ofstream(out / "model" / "config.json") << c.dump(2);
  for (auto& [n, d] : g.adapters) {
    rewrite_dir(d, out / "adapters" / n);
    d = out / "adapters" / n;
  }
  for (ScoreRequest& q : g.requests)
    for (int32_t& id : q.input_ids) id = static_cast<int32_t>(id % V);
  g.expected.clear();
  return g;
}

// Vocabulary shards of unequal widths (V = 509 over 2 and 4 ranks: 255 + 254, 128 + 3 × 127; V = 253 over 2 and 4
// ranks): the embedding sums its lookups by range and lm_head's gathered logits drop each rank's padding, so rank 0
// gives the unsharded logprobs (any padded column scored or drawn would change every logprob of its row through the
// softmax), base and every adapter (embedding LoRA, lm_head LoRA, modules_to_save lm_head), tied and untied heads.
TEST(TensorParallelVocabulary, AVocabularyThatDoesNotDivideGivesTheSameLogprobs) {
  struct Case {
    const char* fixture;
    int64_t V;
    int tp, ep;
  };
  const fs::path root = fs::temp_directory_path() / ("hylora_tp_vocab_" + std::to_string(::getpid()));
  for (const Case& k : std::vector<Case>{{"qwen3_5_causal_lora", 509, 2, 1},
                                         {"qwen3_5_causal_lora", 509, 4, 1},
                                         {"deepseek_v3_embed_lora", 253, 4, 4},
                                         {"nemotron_h_embed_lora", 253, 2, 2}}) {
    SCOPED_TRACE(std::string(k.fixture) + " V " + std::to_string(k.V) + " tp " + std::to_string(k.tp));
    const fs::path out = root / (std::string(k.fixture) + "_" + std::to_string(k.tp));
    const Fixture f = truncate_vocabulary(read_fixture(k.fixture), k.V, out);
    const dist::ShardPlan plan =
        dist::make_shard_plan(dist::model_shard_spec_from_file(model_dir(f) + "/config.json"), k.tp, k.ep);
    const dist::ProjectionPlan& head = plan.at("lm_head");
    int64_t total = 0;
    for (const dist::RankShard& r : head.ranks) total += r.out_local();
    EXPECT_EQ(total, k.V);
    EXPECT_NE(head.ranks.front().out_local(), head.ranks.back().out_local()) << "the shards should be unequal";
    expect_sharded_equals_unsharded(f, {std::string(k.fixture) + "_V" + std::to_string(k.V), k.tp, k.ep});
  }
  // The test can fail: ranks that place their vocabulary as an even split of ⌈V/N⌉ ids would (rank r from r · 128;
  // ranks 2 and 3 really start at 255 and 382) look up the wrong rows for the ids of ranks 2 and 3.
  const Fixture f = truncate_vocabulary(read_fixture("qwen3_5_causal_lora"), 509, root / "broken");
  const Whole w = run_whole(f);
  const auto even = run_sharded(f, 4, 1, Drive::kEveryRank, [](int r) { return r; }, [](Model& m, int r) {
    m.lora_targets().embedding->vocab_begin = r * 128;
  });
  const std::string base;
  EXPECT_GT(max_diff(f.requests, even[0], logprobs_of(w.results), &base), 1e-2);
  fs::remove_all(root);
}

// Sits in front of a model's weight source and, when the model is built and drops its source, records how many
// stored bytes the checkpoint converted (WeightSource::bytes_read).
class ReadCounter : public WeightSource {
 public:
  ReadCounter(std::unique_ptr<WeightSource> inner, int64_t* out) : inner_(std::move(inner)), out_(out) {}
  ~ReadCounter() override { *out_ = inner_->bytes_read(); }
  bool has(const std::string& n) const override { return inner_->has(n); }
  Tensor get(const std::string& n, const Shape& s) override { return inner_->get(n, s); }
  Tensor get_optional(const std::string& n, const Shape& s) override { return inner_->get_optional(n, s); }
  Tensor experts(const std::string& p, const std::string& f, const std::vector<std::string>& parts,
                 const Shape& s) override {
    return inner_->experts(p, f, parts, s);
  }
  Tensor get_block(const std::string& n, const Shape& as, int64_t rows, int64_t cols, const std::vector<Span>& kr,
                   const std::vector<Span>& kc) override {
    return inner_->get_block(n, as, rows, cols, kr, kc);
  }
  Tensor experts_block(const std::string& p, const std::string& f, const std::vector<std::string>& parts,
                       const Shape& full, Span ke, const std::vector<Span>& kr, const std::vector<Span>& kc) override {
    return inner_->experts_block(p, f, parts, full, ke, kr, kc);
  }
  int64_t bytes_read() const override { return inner_->bytes_read(); }
  void require_all_used(const std::string& a) const override { inner_->require_all_used(a); }
  std::string where() const override { return inner_->where(); }

 private:
  std::unique_ptr<WeightSource> inner_;
  int64_t* out_;
};

// Bytes of the checkpoint read to build the whole model (plan null) or rank `rank`'s shard model.
int64_t bytes_read_loading(const std::string& dir, const dist::ShardPlan* plan, int rank) {
  int64_t bytes = -1;
  WeightOrigin origin = WeightOrigin::checkpoint(dir);
  origin.wrap = [&](std::unique_ptr<WeightSource> w) -> std::unique_ptr<WeightSource> {
    if (plan) w = dist::shard_weights(std::move(w), *plan, rank);
    return std::make_unique<ReadCounter>(std::move(w), &bytes);
  };
  const json config = fixtures::read_json(dir + "/config.json");
  make_model(plan ? dist::local_config(config, *plan, rank) : config, dir + "/config.json", origin);
  return bytes;
}

// A rank reads only its shard of the checkpoint (multi_gpu.md §6.1): its rows of column-parallel tensors, its
// columns of row-parallel ones, its experts (fused [E, out, in] tensors and per-expert tensors alike), its
// vocabulary rows. Exactly: the bytes a rank reads are the whole model's less the weights the plan gives to other
// ranks (rank_parameters counts every planned weight a rank holds; what the plan does not name — norms, router
// bias — is read whole by every rank), and so about 1/N of the sharded weights. Reading whole tensors and cutting
// them (the old path) reads every byte on every rank and fails this.
TEST(TensorParallelLoading, ARankReadsOnlyItsShardOfTheCheckpoint) {
  struct Case {
    const char* fixture;
    int tp, ep;
  };
  for (const Case& k : std::vector<Case>{{"qwen3_5_moe_causal_fused", 2, 1},
                                         {"qwen3_5_moe_causal_fused", 4, 4},
                                         {"deepseek_v3_lora", 2, 2},
                                         {"deepseek_v3_lora", 4, 1},
                                         {"nemotron_h", 2, 2}}) {
    const std::string dir = (fixtures::kRoot / k.fixture / "model").string();
    const dist::ModelShardSpec spec = dist::model_shard_spec_from_file(dir + "/config.json");
    const dist::ShardPlan plan = dist::make_shard_plan(spec, k.tp, k.ep);
    const int64_t whole_params = dist::rank_parameters(dist::make_shard_plan(spec, 1), 0);
    const int64_t whole = bytes_read_loading(dir, nullptr, 0);
    const int64_t elem = 2;  // every tensor of these checkpoints is bf16
    const int64_t unplanned = whole - whole_params * elem;  // norms, router biases: read by every rank
    ASSERT_GE(unplanned, 0);
    for (int r = 0; r < k.tp; ++r) {
      const int64_t got = bytes_read_loading(dir, &plan, r);
      const int64_t want = unplanned + dist::rank_parameters(plan, r) * elem;
      EXPECT_EQ(got, want) << k.fixture << " tp " << k.tp << " ep " << k.ep << " rank " << r;
      std::printf("[tp] %-26s tp %d ep %d rank %d read %lld of %lld bytes (%.3f; 1/N = %.3f)\n", k.fixture, k.tp,
                  k.ep, r, static_cast<long long>(got), static_cast<long long>(whole),
                  static_cast<double>(got) / static_cast<double>(whole), 1.0 / k.tp);
      EXPECT_LT(got, whole / k.tp + unplanned + whole / 8) << "far more than 1/N";
    }
  }
}

}  // namespace
