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
#include <map>
#include <mutex>

#include "../fixture_support.h"
#include "dist/in_process_communicator.h"
#include "dist/model_shard_specs.h"
#include "dist/shard_model.h"
#include "engine/executor.h"
#include "engine/rank_channel.h"
#include "lora/adapter_loader.h"
#include "engine/scorer.h"
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

TEST_P(TensorParallelGolden, EqualsUnshardedBaseAndEveryAdapter) {
  const Param p = GetParam();
  const Fixture f = read_fixture(p.fixture);
  const Whole w = run_whole(f);
  ASSERT_LE(max_diff(f.requests, w.results, f.expected, nullptr), f.limit) << "the unsharded run itself";
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
  EXPECT_LE(max_diff(f.requests, ranks[0], f.expected, nullptr), f.limit) << "vs the float64 references";
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
  for (const char* f : {"deepseek_v3_lora", "deepseek_v3_qlora", "deepseek_v3_no_qlora", "deepseek_v3_noq_lora",
                        "deepseek_v3_embed_lora"})
    for (int tp : {2, 4}) out.push_back({f, tp, 1});
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

// DeepSeek-V3 with ep > 1 is not wired (its shared experts' width is moe_intermediate_size × n_shared_experts,
// which a per-rank config cannot express when the experts are whole and the shared experts split): refused when
// the shard model is built, naming the projection, never a wrong answer.
TEST(TensorParallelRefusal, DeepSeekWithExpertParallelismIsRefusedAtLoad) {
  const std::string dir = (fixtures::kRoot / "deepseek_v3_lora" / "model").string();
  const dist::ShardPlan plan = dist::make_shard_plan(dist::model_shard_spec_from_file(dir + "/config.json"), 2, 2);
  try {
    dist::load_model_shard(dir, plan, 0);
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
  const std::string q = message("qwen3_5_causal_lora", 3);
  EXPECT_NE(q.find("--tp 3"), std::string::npos) << q;
  EXPECT_NE(q.find("is not divisible by 3"), std::string::npos) << q;
  const std::string n = message("nemotron_h_lora", 4);  // n_groups = 2: Mamba2 groups are never replicated
  EXPECT_NE(n.find("n_groups = 2 is not divisible by 4"), std::string::npos) << n;
}

}  // namespace
