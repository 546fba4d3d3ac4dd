// The multi-LoRA batch machinery (lora.md §3, §4, §7) on the synthetic model: base + adapter rows in one batch,
// mixed ranks (including rank == --max-lora-rank) on every multi-slice projection and the experts, batch
// composition invariance, more adapters than slots, slot reuse after eviction, pinning, and the shrink/expand ops.
#include "lora_test_support.h"
#include "ops/lora.h"

using namespace lora_test;

namespace {

constexpr uint32_t kSeed = 21;
constexpr int64_t kMaxRank = 16;
// The same request scored in different batches is equal within float32 rounding, not bit for bit: OpenBLAS's kernels
// and blocking change with the row count, a row's place in the block and OPENBLAS_CORETYPE (measured: up to 2.9e-6
// over the default, Haswell, SkylakeX, Zen and Prescott kernels). A request bound to the wrong rows or slot is off by
// O(0.1). Bit-equality is asserted only where the code guarantees it (lora_model_test.cpp, dense models).
constexpr double kRounding = 1e-5;
const std::string L = "model.layers.0.";

// A PEFT adapter of rank r on every target (or only q_proj), merged into `ref` (alpha = 2r: s = 2).
void random_adapter(const fs::path& dir, TinyModel& ref, uint32_t seed, int64_t r, bool q_only = false) {
  std::mt19937 g(seed);
  AdapterFiles f;
  f.config["r"] = r;
  f.config["lora_alpha"] = 2 * r;
  const double s = 2.0;
  auto lin = [&](const std::string& m, int64_t in, int64_t out) {
    Tensor A = randn({r, in}, g, 1.0f / std::sqrt(static_cast<float>(in))), B = randn({out, r}, g, 0.3f);
    f.tensors[m + ".lora_A.weight"] = A;
    f.tensors[m + ".lora_B.weight"] = B;
    ref.merge_linear(m, A, scaled(B, s));
  };
  lin(L + "self_attn.q_proj", H, Q);
  if (!q_only) {
    lin(L + "self_attn.k_proj", H, KV);
    lin(L + "self_attn.v_proj", H, KV);
    lin(L + "self_attn.o_proj", Q + 2 * KV, H);
    lin(L + "linear_attn.in_proj_qkv", H, 2 * GQ + GV);
    lin(L + "linear_attn.in_proj_z", H, GZ);
    lin(L + "linear_attn.in_proj_b", H, GB);
    lin(L + "linear_attn.in_proj_a", H, GB);
    lin(L + "mlp.gate_proj", H, I);
    lin(L + "mlp.up_proj", H, I);
    lin(L + "mlp.down_proj", I, H);
    lin("lm_head", H, V);
    f.config["target_parameters"] = {"moe.experts.gate_up_proj", "moe.experts.down_proj"};
    for (bool gate_up : {true, false}) {
      const int64_t in = gate_up ? H : IE, out = gate_up ? 2 * IE : H;
      Tensor A = randn({E * r, in}, g, 1.0f / std::sqrt(static_cast<float>(in))), B = randn({out, E * r}, g, 0.3f);
      const std::string m = L + (gate_up ? "moe.experts.base_layer" : "moe.experts");
      f.tensors[m + ".lora_A.weight"] = A;
      f.tensors[m + ".lora_B.weight"] = B;
      merge_experts_param(ref, A, B, r, s, gate_up);
    }
    Tensor eA = randn({r, V}, g, 1.0f), eB = randn({H, r}, g, 0.3f);
    f.tensors["model.embed_tokens.lora_embedding_A"] = eA;
    f.tensors["model.embed_tokens.lora_embedding_B"] = eB;
    ref.merge_embedding(eA, scaled(eB, s));
  }
  f.write(dir);
}

struct Fleet {
  TinyModel model{kSeed};
  std::map<std::string, std::unique_ptr<TinyModel>> refs;  // adapter -> merged reference
  std::unique_ptr<test_support::LoraHarness> mgr;

  Fleet(int64_t slots, const std::vector<std::pair<std::string, int64_t>>& adapters, const std::string& tag) {
    mgr = std::make_unique<test_support::LoraHarness>(model, kMaxRank, slots);
    uint32_t seed = 100;
    for (auto& [name, rank] : adapters) {
      auto dir = temp_dir(tag + "_" + name);
      refs[name] = std::make_unique<TinyModel>(kSeed);
      random_adapter(dir, *refs[name], seed++, rank, name.rfind("qonly", 0) == 0);
      mgr->load(name, dir.string());
    }
  }

  // Every result against its own reference (the base model for requests without an adapter).
  double worst(const std::vector<ScoreRequest>& reqs, const std::vector<ScoreResult>& got) {
    double w = 0;
    for (size_t i = 0; i < reqs.size(); ++i) {
      ScoreRequest plain = reqs[i];
      plain.lora.reset();
      Model& ref = reqs[i].lora ? static_cast<Model&>(*refs.at(*reqs[i].lora)) : static_cast<Model&>(model);
      auto want = test_support::score_requests(ref, {plain}, {});
      w = std::max(w, max_diff(got[i], want[0]));
    }
    return w;
  }
};

}  // namespace

TEST(LoraBatch, BaseRowsInAMixedBatchAreExactlyTheBaseModel) {
  Fleet f(4, {{"a", 4}, {"b", 7}}, "base_mix");
  auto reqs = requests_for({std::nullopt, "a", std::nullopt, "b", "a", std::nullopt}, 1);
  auto got = test_support::score_requests(f.model, reqs, {}, f.mgr.get());
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (reqs[i].lora) continue;
    auto alone = test_support::score_requests(f.model, {reqs[i]}, {});
    EXPECT_LT(max_diff(got[i], alone[0]), kRounding) << "base request " << i;
  }
  EXPECT_LT(f.worst(reqs, got), 2e-5);
}

TEST(LoraBatch, MixedRanksIncludingMaxRankInOneBatch) {
  // rank < max on every multi-slice projection (qkv, GDN in_proj, gate_up, gated experts), and rank == max.
  Fleet f(4, {{"r1", 1}, {"r5", 5}, {"r16", kMaxRank}}, "ranks");
  auto reqs = requests_for({"r1", "r16", std::nullopt, "r5", "r16", "r1"}, 2);
  auto got = test_support::score_requests(f.model, reqs, {}, f.mgr.get());
  EXPECT_LT(f.worst(reqs, got), 2e-5);
  // Every adapter visibly changes the output.
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (!reqs[i].lora) continue;
    ScoreRequest plain = reqs[i];
    plain.lora.reset();
    EXPECT_GT(max_diff(got[i], test_support::score_requests(f.model, {plain}, {})[0]), 0.05) << *reqs[i].lora;
  }
}

TEST(LoraBatch, SameRequestAloneAndInDifferentMixes) {
  Fleet f(3, {{"a", 3}, {"b", 8}, {"c", 16}}, "invariance");
  ScoreRequest x = requests_for({"b"}, 77, 23)[0];
  auto alone = test_support::score_requests(f.model, {x}, {}, f.mgr.get())[0];
  std::vector<std::vector<std::optional<std::string>>> mixes = {
      {"a", std::nullopt, "c"}, {std::nullopt}, {"b", "b", "a"}, {"c", "a", std::nullopt, "b"}};
  const ScoreOptions opts[] = {{4096, 512}, {16, 5}, {7, 1}};
  for (size_t m = 0; m < mixes.size(); ++m)
    for (auto& o : opts) {
      auto reqs = requests_for(mixes[m], 9 + static_cast<uint32_t>(m));
      reqs.insert(reqs.begin() + static_cast<long>(m % reqs.size()), x);
      auto got = test_support::score_requests(f.model, reqs, o, f.mgr.get());
      const size_t at = m % (reqs.size() - 1);
      ASSERT_EQ(got[at].id, x.id);
      EXPECT_LT(max_diff(got[at], alone), kRounding) << "mix " << m << " batch " << o.max_batch_tokens;
    }
  EXPECT_LT(f.worst({x}, {alone}), 2e-5);
}

TEST(LoraBatch, MoreAdaptersThanSlotsSplitsTheWork) {
  Fleet f(2, {{"a", 2}, {"b", 4}, {"c", 16}, {"d", 1}, {"e", 9}}, "slots");
  auto reqs = requests_for({"a", "b", "c", std::nullopt, "d", "e", "a", "c", "e", std::nullopt, "b", "d"}, 3);
  auto got = test_support::score_requests(f.model, reqs, {}, f.mgr.get());
  EXPECT_LT(f.worst(reqs, got), 2e-5);
  EXPECT_GE(f.mgr->ex.adapter_slot_loads(), 5);
  // Token-by-token with tiny steps: slots rotate many times.
  auto got2 = test_support::score_requests(f.model, reqs, {5, 1}, f.mgr.get());
  EXPECT_LT(f.worst(reqs, got2), 2e-5);
}

TEST(LoraBatch, SlotReuseAfterEvictionLeavesNoStaleWeights) {
  // One slot: the rank-16, every-target adapter is evicted for a rank-1 q_proj-only one.
  Fleet f(1, {{"big", kMaxRank}, {"qonly", 1}}, "reuse");
  auto reqs = requests_for({"big", "qonly", "big", "qonly"}, 4);
  auto got = test_support::score_requests(f.model, reqs, {}, f.mgr.get());
  EXPECT_LT(f.worst(reqs, got), 2e-5);
  // The slot now holds "qonly": every buffer "big" wrote is zero except q_proj's rank-1 rows/columns.
  ASSERT_EQ(f.mgr->ex.adapter_slot(*f.mgr->find("qonly")), 0);
  const LoraWeights& w = f.mgr->ex.lora_weights();
  const auto& targets = f.model.lora_targets();
  int checked = 0;
  for (int32_t t = 0; t < static_cast<int32_t>(targets.linears.size()); ++t) {
    const auto& slices = w.linears.at(t).slices;
    for (size_t k = 0; k < slices.size(); ++k) {
      const bool is_q = targets.linears[t]->slices[k].module == L + "self_attn.q_proj";
      const int64_t in = targets.linears[t]->in_features();
      const float* A = slices[k].A.f32();  // slot 0: [max_r, in]
      const float* B = slices[k].B.f32();  // slot 0: [out, max_r]
      ++checked;
      for (int64_t j = 0; j < kMaxRank; ++j)
        for (int64_t c = 0; c < in; ++c)
          if (!(is_q && j == 0)) {
            EXPECT_EQ(A[j * in + c], 0.0f) << targets.linears[t]->slices[k].module;
          }
      for (int64_t o = 0; o < slices[k].out_size; ++o)
        for (int64_t j = 0; j < kMaxRank; ++j)
          if (!(is_q && j == 0)) {
            EXPECT_EQ(B[o * kMaxRank + j], 0.0f) << targets.linears[t]->slices[k].module;
          }
      EXPECT_EQ(slices[k].rank.i32()[0], is_q ? 1 : 0);
    }
  }
  EXPECT_GE(checked, 12);
  for (const auto& t : w.experts)
    for (const auto& b : t.slices)
      for (int64_t i = 0; i < E * b.out_size * kMaxRank; ++i) EXPECT_EQ(b.B.f32()[i], 0.0f);  // groups of slot 0
}

TEST(LoraBatch, PinnedAdapterKeepsItsSlot) {
  Fleet f(2, {{"p", 4}, {"a", 4}, {"b", 4}}, "pin");
  f.mgr->ex.pin_adapter(f.mgr->find("p"));
  const int32_t slot = f.mgr->ex.adapter_slot(*f.mgr->find("p"));
  auto reqs = requests_for({"a", "b", "a", "b", "p"}, 6);
  auto got = test_support::score_requests(f.model, reqs, {8, 4}, f.mgr.get());
  EXPECT_LT(f.worst(reqs, got), 2e-5);
  EXPECT_EQ(f.mgr->ex.adapter_slot(*f.mgr->find("p")), slot);
  // At most slots − 1 pinned: one slot always rotates.
  std::string msg = error_of([&] { f.mgr->ex.pin_adapter(f.mgr->find("a")); });
  EXPECT_NE(msg.find("at most"), std::string::npos) << msg;
}

// Host int32 tensor from a list.
Tensor ints(const std::vector<int32_t>& v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::I32);
  std::copy(v.begin(), v.end(), t.i32());
  return t;
}

TEST(LoraOps, ShrinkExpandMatchNaiveWithPaddingAndUntouchedSlices) {
  std::mt19937 g(5);
  const int64_t N = 9, in = 7, max_r = 6, slots = 3;
  const int64_t out_sizes[2] = {5, 3};
  Tensor x = randn({N, in}, g, 1.0f);
  const std::vector<int32_t> row_slot = {2, -1, 0, 2, 0, -1, 1, 2, 0};
  // Rows grouped by slot (ascending), base rows in no segment.
  ops::LoraSegments seg;
  seg.num_rows = 7;
  seg.num_segments = 3;
  seg.perm = ints({2, 4, 8, 6, 0, 3, 7});
  seg.indptr = ints({0, 3, 4, 7});
  seg.group = ints({0, 1, 2});
  // Slot buffers: slot 1 does not touch slice 1 (rank 0); slot 0 has rank 2 (zero past it), slot 2 full rank.
  std::vector<ops::LoraSliceBuffers> sl(2);
  const int64_t ranks[3] = {2, max_r, max_r};
  int64_t off = 0;
  for (int k = 0; k < 2; ++k) {
    sl[k].out_offset = off;
    sl[k].out_size = out_sizes[k];
    off += out_sizes[k];
    sl[k].A = Tensor::zeros({slots, max_r, in});
    sl[k].B = Tensor::zeros({slots, out_sizes[k], max_r});
    sl[k].rank = Tensor::zeros({slots}, DType::I32);
    for (int s = 0; s < slots; ++s) {
      if (s == 1 && k == 1) continue;
      Tensor a = randn({ranks[s], in}, g, 1.0f), b = randn({out_sizes[k], ranks[s]}, g, 1.0f);
      std::copy_n(a.f32(), a.numel(), sl[k].A.f32() + s * max_r * in);
      for (int64_t o = 0; o < out_sizes[k]; ++o)
        std::copy_n(b.f32() + o * ranks[s], ranks[s], sl[k].B.f32() + (s * out_sizes[k] + o) * max_r);
      sl[k].rank.i32()[s] = static_cast<int32_t>(ranks[s]);
    }
  }
  ExecCtx ctx;
  Tensor y = randn({N, off}, g, 1.0f), y0 = y.clone();
  Tensor s = Tensor::empty({7, 2, max_r});
  ops::lora_shrink(ctx, x, seg, {&sl[0], &sl[1]}, s);
  ops::lora_expand(ctx, s, seg, {&sl[0], &sl[1]}, y);
  for (int64_t n = 0; n < N; ++n)
    for (int k = 0; k < 2; ++k)
      for (int64_t o = 0; o < out_sizes[k]; ++o) {
        double want = y0.f32()[n * off + sl[k].out_offset + o];
        const int32_t slot = row_slot[n];
        if (slot >= 0 && sl[k].rank.i32()[slot] > 0)
          for (int64_t j = 0; j < max_r; ++j) {
            double xa = 0;
            for (int64_t c = 0; c < in; ++c) xa += x.f32()[n * in + c] * sl[k].A.f32()[(slot * max_r + j) * in + c];
            want += xa * sl[k].B.f32()[(slot * out_sizes[k] + o) * max_r + j];
          }
        EXPECT_NEAR(y.f32()[n * off + sl[k].out_offset + o], want, 1e-4) << n << " " << k << " " << o;
      }
}
