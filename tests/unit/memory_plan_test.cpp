// GPU memory sizing (engine/memory_plan.h) as plain arithmetic, the cache-pool byte counts it uses, the dtype policy
// of the weights (models/weight_precision.h), and the executor's refusal of bf16 on the CPU: none needs a GPU.
#include <gtest/gtest.h>

#include <set>

#include "engine/executor.h"
#include "engine/memory_plan.h"
#include "kv/cache_pools.h"
#include "models/model.h"
#include "models/weight_precision.h"
#include "test_support.h"

namespace hylora {
namespace {
using test_support::error_of;

constexpr int64_t kGiB = int64_t{1} << 30;

MemoryPlanInput gpu(double fraction) {
  MemoryPlanInput in;
  in.fraction = fraction;
  in.total_bytes = 100 * kGiB;
  in.used_bytes = 20 * kGiB;     // weights, slots, context
  in.pending_bytes = 2 * kGiB;   // state slots
  in.scratch_bytes = 3 * kGiB;
  in.page_bytes = 1 << 20;       // 1 MiB per page
  in.min_pages = 256;
  return in;
}

TEST(MemoryPlan, PagesFillTheFractionLeftAfterEverythingElse) {
  // 0.9 × 100 GiB − 20 used − 2 pending − 3 scratch = 65 GiB of 1 MiB pages.
  EXPECT_EQ(plan_kv_pages(gpu(0.9)), 65 * 1024);
  EXPECT_EQ(plan_kv_pages(gpu(0.5)), 25 * 1024);
}

TEST(MemoryPlan, CapsAndRequestsAreHonoured) {
  MemoryPlanInput in = gpu(0.9);
  in.max_pages = 1000;  // every sequence at full length needs no more
  EXPECT_EQ(plan_kv_pages(in), 1000);
  in.max_pages = 0;
  in.requested_pages = 5000;  // --kv-cache-tokens: exactly that, if it fits
  EXPECT_EQ(plan_kv_pages(in), 5000);
  in.requested_pages = 70 * 1024;  // 70 GiB of pages > 65 GiB left
  const std::string e = error_of([&] { plan_kv_pages(in); });
  EXPECT_NE(e.find("--kv-cache-tokens"), std::string::npos) << e;
  EXPECT_NE(e.find("does not fit"), std::string::npos) << e;
}

TEST(MemoryPlan, ModelWithoutPagedLayersGetsItsMinimum) {
  MemoryPlanInput in = gpu(0.9);
  in.page_bytes = 0;
  EXPECT_EQ(plan_kv_pages(in), 256);
}

TEST(MemoryPlan, TooSmallAFractionNamesTheBytesNeededAndAvailable) {
  // 0.25 × 100 GiB − 20 GiB used = 5 GiB available; 2 + 3 GiB + 256 MiB of pages needed.
  const std::string e = error_of([] { plan_kv_pages(gpu(0.25)); });
  EXPECT_NE(e.find("does not fit in GPU memory"), std::string::npos) << e;
  EXPECT_NE(e.find(std::to_string(5 * kGiB + 256 * (1 << 20)) + " bytes"), std::string::npos) << e;  // needed
  EXPECT_NE(e.find(std::to_string(5 * kGiB) + " bytes"), std::string::npos) << e;                    // available
  EXPECT_NE(e.find("--mem-fraction 0.25"), std::string::npos) << e;
  // Less than what is already in use: nothing available, still the same clear error.
  EXPECT_NE(error_of([] { plan_kv_pages(gpu(0.1)); }).find("0 bytes (0 MiB) are available"), std::string::npos);
  // A fraction outside (0, 1] is refused as such.
  EXPECT_NE(error_of([] { plan_kv_pages(gpu(1.5)); }).find("must be in (0, 1]"), std::string::npos);
  EXPECT_NE(error_of([] { plan_kv_pages(gpu(0.0)); }).find("must be in (0, 1]"), std::string::npos);
}

TEST(MemoryPlan, ScratchReserveCoversTheLogitsAndActivations) {
  // 4096 rows × (V 1000 + 32 × H 64) floats + 64 MiB.
  EXPECT_EQ(scratch_reserve_bytes(4096, 1000, 64), 4096 * (1000 + 32 * 64) * 4 + (int64_t{64} << 20));
}

TEST(MemoryPlan, CachePoolByteCountsMatchThePoolsBuilt) {
  const std::vector<LayerCacheSpec> specs = {LayerCacheSpec::attention(2, 8, 4), LayerCacheSpec::latent(12),
                                             LayerCacheSpec::recurrent({6, 3}, {2, 4, 5}), LayerCacheSpec{}};
  const int64_t pages = 3, page_size = 4, slots = 5;
  EXPECT_EQ(CachePools::page_bytes(specs, page_size), (2 * (8 + 4) + 12) * page_size * sizeof(float));
  EXPECT_EQ(CachePools::slot_bytes(specs), (6 * 3 + 2 * 4 * 5) * sizeof(float));
  CachePools pools(specs, pages, page_size, slots);
  EXPECT_EQ(pools.bytes(),
            pages * CachePools::page_bytes(specs, page_size) + slots * CachePools::slot_bytes(specs));
}

// --dtype bfloat16 on the GPU: K/V pages in bf16 (half the bytes), MLA latents and recurrent states stay float32.
TEST(MemoryPlan, Bf16KvPagesHalveOnlyTheAttentionLayers) {
  const std::vector<LayerCacheSpec> specs = {LayerCacheSpec::attention(2, 8, 4), LayerCacheSpec::latent(12),
                                             LayerCacheSpec::recurrent({6, 3}, {2, 4, 5})};
  const int64_t pages = 3, page_size = 4, slots = 5;
  EXPECT_EQ(CachePools::page_bytes(specs, page_size, DType::BF16), (2 * (8 + 4) * 2 + 12 * 4) * page_size);
  CachePools pools(specs, pages, page_size, slots, host_allocator(), DType::BF16);
  EXPECT_EQ(pools.layers()[0].k.dtype(), DType::BF16);
  EXPECT_EQ(pools.layers()[0].v.dtype(), DType::BF16);
  EXPECT_EQ(pools.layers()[1].latent.dtype(), DType::F32);
  EXPECT_EQ(pools.layers()[2].recurrent.dtype(), DType::F32);
  EXPECT_EQ(pools.bytes(),
            pages * CachePools::page_bytes(specs, page_size, DType::BF16) + slots * CachePools::slot_bytes(specs));
}

// The policy on a real MoE fixture: projections, experts, lm_head and the embedding go to the compute dtype; the
// router and the shared-expert gate (HF: float32) and every norm stay float32.
TEST(WeightPrecision, BigMatricesOnlyRoutersAndNormsStayFloat32) {
  auto model = load_model(HYLORA_FIXTURES_DIR "/qwen3_5_moe_lora/model");
  std::set<const Tensor*> reduced;
  for (Tensor* t : compute_dtype_weights(*model)) reduced.insert(t);
  const LoraTargets& tg = model->lora_targets();
  int routers = 0, projections = 0;
  for (Linear* l : tg.linears) {
    auto ends_with = [&](const std::string& tail) {
      return l->name.size() >= tail.size() && l->name.compare(l->name.size() - tail.size(), tail.size(), tail) == 0;
    };
    const bool is_router = ends_with(".mlp.gate") || ends_with(".shared_expert_gate");
    EXPECT_EQ(l->full_precision, is_router) << l->name;
    EXPECT_EQ(reduced.count(&l->weight), is_router ? 0u : 1u) << l->name;
    routers += is_router;
    projections += !is_router;
  }
  EXPECT_GT(routers, 0);
  EXPECT_GT(projections, 0);
  for (ExpertLinear* e : tg.experts) EXPECT_EQ(reduced.count(&e->weight), 1u) << e->name;
  ASSERT_NE(tg.embedding, nullptr);
  EXPECT_EQ(reduced.count(&tg.embedding->table), 1u);
  // Nothing else: every other weight (norms, conv, A_log, dt_bias, biases) is float32.
  size_t others = 0;
  model->for_each_weight([&](Tensor& t) { others += t.defined() && t.ndim() == 1 && reduced.count(&t); });
  EXPECT_EQ(others, 0u);
}

TEST(WeightPrecision, CpuRefusesBfloat16WithAClearMessage) {
  ExecutorOptions o;
  o.dtype = DType::BF16;
  const std::string e = error_of([&] { Executor ex(HYLORA_FIXTURES_DIR "/qwen3_5_causal_lora/model", o); });
  EXPECT_NE(e.find("--dtype bfloat16: the CPU reference backend computes in float32 only"), std::string::npos) << e;
}

}  // namespace
}  // namespace hylora
