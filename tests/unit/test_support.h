#pragma once
// Helpers shared by the unit tests: error capture, scratch directories, JSONL, running the hylora binary, scoring
// a model several ways and comparing the results.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/exec_ctx.h"
#include "engine/scorer.h"
#include "lora/normalized_adapter.h"
#include "models/model.h"
#include "ops/gated_delta.h"
#include "ops/gated_rms_norm.h"
#include "ops/linear.h"
#include "ops/rope_interleave.h"
#include "ops/ssm_scan.h"
#include "shell_and_jsonl.h"

namespace hylora::test_support {

namespace fs = std::filesystem;

// The message of the hylora::Error that f throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A fresh, empty scratch directory unique to this test process.
inline fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("hylora_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

using shell_and_jsonl::read_jsonl;
using shell_and_jsonl::run_command;

// Random base-model requests of lengths 23, 1, 9, 40 over a vocabulary of `vocab` tokens.
inline std::vector<ScoreRequest> random_requests(int64_t vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(vocab - 1));
  std::vector<ScoreRequest> r;
  const std::pair<const char*, int> shapes[] = {{"a", 23}, {"b", 1}, {"c", 9}, {"d", 40}};
  for (auto [id, len] : shapes) {
    ScoreRequest q;
    q.id = id;
    for (int i = 0; i < len; ++i) q.input_ids.push_back(tok(rng));
    r.push_back(q);
  }
  return r;
}

// An executor over a model the test owns (non-owning), with room for the tests' sequences.
inline ExecutorOptions test_executor_options(int64_t max_rank = 64, int64_t slots = 8) {
  ExecutorOptions o;
  o.max_lora_rank = max_rank;
  o.max_loras_per_batch = slots;
  return o;
}

// Scores `requests` with the given step shape (prefill chunk, rows per step).
inline std::vector<ScoreResult> score_with(Model& m, const std::vector<ScoreRequest>& requests, int64_t chunk,
                                           int64_t budget) {
  ScoreOptions o;
  o.prefill_chunk = chunk;
  o.max_batch_tokens = budget;
  Executor ex(m, test_executor_options());
  return score_requests(ex, requests, o);
}

// An executor plus adapters by name: what the tests score adapters with.
struct LoraHarness {
  LoraHarness(Model& m, int64_t max_rank, int64_t slots) : ex(m, test_executor_options(max_rank, slots)) {}
  // Loads like `hylora score --lora NAME=DIR`: a name loaded twice is refused.
  void load(const std::string& name, const std::string& dir) {
    if (adapters.count(name)) fail("adapter \"", name, "\": the name is already loaded (from ", adapters.at(name)->dir, ")");
    adapters[name] = ex.load_adapter(name, dir);
  }
  std::shared_ptr<const lora::NormalizedAdapter> find(const std::string& name) const {
    auto it = adapters.find(name);
    return it == adapters.end() ? nullptr : it->second;
  }
  Executor ex;
  AdapterSet adapters;
};

// score_requests over a model, with a harness's adapters (or none): the model is stateless, so every call sees the
// same weights; the harness's executor keeps its adapter slots between calls.
inline std::vector<ScoreResult> score_requests(Model& m, const std::vector<ScoreRequest>& requests,
                                               const ScoreOptions& o, LoraHarness* lora = nullptr) {
  if (lora) return hylora::score_requests(lora->ex, requests, o, lora->adapters);
  Executor ex(m, test_executor_options());
  return hylora::score_requests(ex, requests, o);
}

// y = x Wᵀ on the host (test references).
inline Tensor matmul_nt(const Tensor& x, const Tensor& w) {
  ExecCtx ctx;
  Tensor y = Tensor::empty({x.dim(0), w.dim(0)});
  ops::matmul_nt(ctx, x, w, y);
  return y;
}

// One sequence through a varlen op: layout of n rows at state slot 0.
struct OneSeq {
  explicit OneSeq(int64_t n) {
    cu = Tensor::empty({2}, DType::I32);
    cu.i32()[0] = 0;
    cu.i32()[1] = static_cast<int32_t>(n);
    slot = Tensor::zeros({1}, DType::I32);
    layout.num_seqs = 1;
    layout.num_tokens = n;
    layout.cu_seqlens = cu;
    layout.state_slots = slot;
  }
  Tensor cu, slot;
  ops::SeqLayout layout;
};

// The old single-sequence signatures of the recurrent ops, over a state [..] viewed as a one-slot pool.
inline Tensor gated_delta_rule(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& beta,
                               Tensor& state) {
  ExecCtx ctx;
  OneSeq one(q.dim(0));
  Tensor pool = state.reshape({1, state.dim(0), state.dim(1), state.dim(2)});
  Tensor o = Tensor::empty({q.dim(0), v.dim(1)});
  ops::gated_delta_rule(ctx, q, k, v, g, beta, one.layout, pool, o);
  return o;
}
inline Tensor ssm_scan(const Tensor& x, const Tensor& dt, const Tensor& B, const Tensor& C, const Tensor& A,
                       const Tensor& D, const Tensor& dt_bias, float dt_min, Tensor& state) {
  ExecCtx ctx;
  OneSeq one(x.dim(0));
  Tensor pool = state.reshape({1, state.dim(0), state.dim(1), state.dim(2)});
  Tensor y = Tensor::empty({x.dim(0), x.dim(1)});
  ops::ssm_scan(ctx, x, dt, B, C, A, D, dt_bias, dt_min, one.layout, pool, y);
  return y;
}
inline Tensor rms_norm_gated(const Tensor& y, const Tensor& z, const Tensor& w, int64_t group, float eps,
                             ops::GateOrder order) {
  ExecCtx ctx;
  Tensor out = Tensor::empty({y.dim(0), y.dim(1)});
  ops::rms_norm_gated(ctx, y, z, w, group, eps, order, out);
  return out;
}
// x [n, heads, D] in place.
inline void rope_interleaved_inplace(Tensor& x, const std::vector<int64_t>& pos, const std::vector<float>& inv,
                                     int64_t rot, int64_t offset, float scaling) {
  ExecCtx ctx;
  Tensor p = Tensor::empty({static_cast<int64_t>(pos.size())}, DType::I32);
  for (size_t i = 0; i < pos.size(); ++i) p.i32()[i] = static_cast<int32_t>(pos[i]);
  Tensor flat = x.reshape({x.dim(0), x.dim(1) * x.dim(2)});
  ops::rope_interleaved(ctx, flat, x.dim(2), p, inv, rot, offset, scaling);
}
inline void rope_pairs_to_halves_inplace(Tensor& x, int64_t rot, int64_t offset) {
  Tensor flat = x.reshape({x.dim(0), x.dim(1) * x.dim(2)});
  ops::rope_pairs_to_halves(flat, x.dim(2), rot, offset);
}

// max |a - b| over the logprobs of one result pair (both must have succeeded and have the same length).
inline double max_diff(const ScoreResult& a, const ScoreResult& b) {
  EXPECT_TRUE(a.error.empty()) << a.error;
  EXPECT_TRUE(b.error.empty()) << b.error;
  EXPECT_EQ(a.logprobs.size(), b.logprobs.size());
  double d = 0;
  for (size_t i = 0; i < a.logprobs.size() && i < b.logprobs.size(); ++i)
    d = std::max(d, std::fabs(a.logprobs[i] - b.logprobs[i]));
  return d;
}

inline double max_diff(const std::vector<ScoreResult>& a, const std::vector<ScoreResult>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, max_diff(a[i], b[i]));
  return d;
}

}  // namespace hylora::test_support
