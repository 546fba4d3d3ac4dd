// LoRA targets that no adapter of the step touches are skipped (models/linear_forward.cpp, LoraTargetWeights::
// slot_active): the pool keeps the per-slot flags, linear() skips an inactive target and applies an active one, and
// the CUDA graph key (GraphShape::lora_targets) tells steps with different active sets apart.
#include <gtest/gtest.h>

#include <memory>
#include <random>

#include "batch/graph_padding.h"
#include "lora/lora_pool.h"
#include "models/forward_args.h"
#include "models/linear_forward.h"

using namespace hylora;

namespace {

Tensor randn(Shape s, std::mt19937& g) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  Tensor t = Tensor::empty(std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = d(g);
  return t;
}

constexpr int64_t kIn = 6, kOut = 5, kSlots = 3, kMaxR = 4;

struct TwoLinears {
  explicit TwoLinears(std::mt19937& g) {
    for (int i = 0; i < 2; ++i) {
      lin[i].name = i == 0 ? "q" : "o";
      lin[i].weight = randn({kOut, kIn}, g);
      lin[i].slices = {{lin[i].name, 0, kOut}};
      lin[i].lora_id = i;
      targets.linears.push_back(&lin[i]);
    }
  }
  Linear lin[2];
  LoraTargets targets;
};

std::shared_ptr<lora::NormalizedAdapter> adapter_on(int32_t target, int64_t rank, std::mt19937& g) {
  auto a = std::make_shared<lora::NormalizedAdapter>();
  a->name = "on" + std::to_string(target);
  a->linears.push_back({target, 0, rank, randn({rank, kIn}, g), randn({kOut, rank}, g)});
  return a;
}

// All rows of x on one segment of `slot`.
struct OneSegmentStep {
  OneSegmentStep(int64_t rows, int32_t slot) {
    perm = Tensor::empty({rows}, DType::I32);
    for (int64_t r = 0; r < rows; ++r) perm.i32()[r] = static_cast<int32_t>(r);
    indptr = Tensor::empty({2}, DType::I32);
    indptr.i32()[0] = 0;
    indptr.i32()[1] = static_cast<int32_t>(rows);
    group = Tensor::empty({1}, DType::I32);
    group.i32()[0] = slot;
    step.lora.num_rows = rows;
    step.lora.num_segments = 1;
    step.lora.perm = perm;
    step.lora.indptr = indptr;
    step.lora.group = group;
    step.lora.group_host = {slot};
  }
  Tensor perm, indptr, group;
  StepTensors step;
};

Tensor run_linear(const LoraWeights* w, const Linear& lin, const Tensor& x, int32_t slot) {
  ExecCtx ctx;
  OneSegmentStep s(x.dim(0), slot);
  std::vector<LayerCache> caches;
  ForwardArgs a{ctx, s.step, caches, w};
  Tensor y = Tensor::empty({x.dim(0), kOut});
  linear(a, lin, x, y);
  return y;
}

bool same(const Tensor& a, const Tensor& b) {
  for (int64_t i = 0; i < a.numel(); ++i)
    if (a.f32()[i] != b.f32()[i]) return false;
  return true;
}

}  // namespace

TEST(LoraSkip, PoolKeepsPerSlotActiveFlags) {
  std::mt19937 g(1);
  TwoLinears m(g);
  lora::LoraPool pool(m.targets, kSlots, kMaxR);
  const LoraWeights& w = pool.weights();
  ASSERT_EQ(w.linears.size(), 2u);
  EXPECT_EQ(w.linears[0].slot_active, (std::vector<uint8_t>{0, 0, 0}));
  auto on_q = adapter_on(0, 2, g), on_o = adapter_on(1, 3, g);
  const int32_t sq = pool.acquire(on_q), so = pool.acquire(on_o);
  EXPECT_TRUE(w.linears[0].slot_active[sq]);
  EXPECT_FALSE(w.linears[1].slot_active[sq]);
  EXPECT_FALSE(w.linears[0].slot_active[so]);
  EXPECT_TRUE(w.linears[1].slot_active[so]);
  EXPECT_FALSE(w.linears[1].active_for({sq}));
  EXPECT_TRUE(w.linears[1].active_for({sq, so}));
  EXPECT_TRUE(w.linears[1].active_for({}));  // no host slots: never skipped
  EXPECT_FALSE(w.embedding.active_for({sq, so}));  // no embedding target: nothing active
  // Evict clears; a reuse of the slot by another adapter sets only that adapter's targets.
  pool.evict(*on_q);
  EXPECT_FALSE(w.linears[0].slot_active[sq]);
  auto on_o2 = adapter_on(1, 1, g);
  EXPECT_EQ(pool.acquire(on_o2), sq);
  EXPECT_FALSE(w.linears[0].slot_active[sq]);
  EXPECT_TRUE(w.linears[1].slot_active[sq]);
  // A slot filled to capacity then reused by LRU: the old adapter's flags go with it.
  auto on_q2 = adapter_on(0, 2, g);
  const int32_t s3 = pool.acquire(on_q2);
  auto on_o3 = adapter_on(1, 2, g);
  const int32_t s4 = pool.acquire(on_o3, {so, s3});  // evicts the least recent slot outside the step: sq
  EXPECT_EQ(s4, sq);
  EXPECT_FALSE(w.linears[0].slot_active[s4]);
  EXPECT_TRUE(w.linears[1].slot_active[s4]);
  // A rank-0 slice leaves its target inactive.
  auto zero = std::make_shared<lora::NormalizedAdapter>();
  zero->name = "zero";
  zero->linears.push_back({0, 0, 0, Tensor::zeros({1, kIn}), Tensor::zeros({kOut, 1})});
  const int32_t sz = pool.acquire(zero, {so, s3});
  EXPECT_FALSE(w.linears[0].slot_active[sz]);
}

TEST(LoraSkip, LinearSkipsATargetNoAdapterOfTheStepTouches) {
  std::mt19937 g(2);
  TwoLinears m(g);
  lora::LoraPool pool(m.targets, kSlots, kMaxR);
  const int32_t sq = pool.acquire(adapter_on(0, 2, g));  // touches q only
  const Tensor x = randn({4, kIn}, g);
  const Tensor base_q = run_linear(nullptr, m.lin[0], x, sq), base_o = run_linear(nullptr, m.lin[1], x, sq);
  // o is untouched by the step's adapter: bit-identical to the base projection.
  EXPECT_TRUE(same(run_linear(&pool.weights(), m.lin[1], x, sq), base_o));
  // q is touched: LoRA applied.
  EXPECT_FALSE(same(run_linear(&pool.weights(), m.lin[0], x, sq), base_q));

  // The decision is the flag's (not the buffers'): with o's buffers of slot sq made nonzero behind the pool's back,
  // a cleared flag still skips and a set one applies them.
  LoraWeights copy = pool.weights();
  const ops::LoraSliceBuffers& b = pool.weights().linears[1].slices[0];
  copy.linears[1].slices[0].A = b.A.clone();
  copy.linears[1].slices[0].B = b.B.clone();
  copy.linears[1].slices[0].rank = b.rank.clone();
  auto& cs = copy.linears[1].slices[0];
  for (int64_t i = 0; i < kMaxR * kIn; ++i) cs.A.f32()[sq * kMaxR * kIn + i] = 0.5f;
  for (int64_t i = 0; i < kOut * kMaxR; ++i) cs.B.f32()[sq * kOut * kMaxR + i] = 0.25f;
  cs.rank.i32()[sq] = 2;
  EXPECT_TRUE(same(run_linear(&copy, m.lin[1], x, sq), base_o));
  copy.linears[1].slot_active[sq] = 1;
  EXPECT_FALSE(same(run_linear(&copy, m.lin[1], x, sq), base_o));
}

TEST(LoraSkip, ActiveBitsFollowTheStepsSlots) {
  std::mt19937 g(3);
  TwoLinears m(g);
  lora::LoraPool pool(m.targets, kSlots, kMaxR);
  const int32_t sq = pool.acquire(adapter_on(0, 2, g)), so = pool.acquire(adapter_on(1, 2, g));
  const LoraWeights& w = pool.weights();
  EXPECT_NE(w.active_bits({sq}, {sq}), w.active_bits({so}, {so}));
  EXPECT_NE(w.active_bits({sq}, {sq}), w.active_bits({sq, so}, {sq, so}));
  EXPECT_EQ(w.active_bits({sq}, {sq}), w.active_bits({sq, sq}, {sq}));
}

TEST(GraphPadding, LoraTargetsArePartOfTheGraphKey) {
  GraphShape a{4, 8, 8, {}}, b{4, 8, 8, {}};
  a.lora_targets = {0b0101};
  b.lora_targets = {0b0111};
  EXPECT_NE(a, b);
  EXPECT_TRUE(a < b || b < a);
  b.lora_targets = a.lora_targets;
  EXPECT_EQ(a, b);
}
