// LoraMirror (the executor's device copy of the adapter slots): a load copies the loaded slot's block of each buffer
// and nothing else, an evict copies nothing, the active flags follow both, and the mirror ends up equal to the host
// masters. Runs on the CPU: the "device" is host memory and the copy hook counts bytes.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>

#include "engine/lora_mirror.h"
#include "lora/lora_pool.h"

using namespace hylora;

namespace {

constexpr int64_t kIn = 6, kOut = 5, kExperts = 4, kSlots = 3, kMaxR = 4;

Tensor randn(Shape s, std::mt19937& g) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  Tensor t = Tensor::empty(std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = d(g);
  return t;
}

// Two dense targets and one expert target.
struct Targets {
  explicit Targets(std::mt19937& g) {
    init(lin[0], "q", 0, g);
    init(lin[1], "o", 1, g);
    ex.weight = randn({kExperts, kOut, kIn}, g);
    ex.slices = {{"experts.up", 0, kOut}};
    ex.lora_id = 0;
    targets.experts.push_back(&ex);
  }
  void init(Linear& l, const std::string& name, int id, std::mt19937& g) {
    l.name = name;
    l.weight = randn({kOut, kIn}, g);
    l.slices = {{name, 0, kOut}};
    l.lora_id = id;
    targets.linears.push_back(&l);
  }
  Linear lin[2];
  ExpertLinear ex;
  LoraTargets targets;
};

std::shared_ptr<lora::NormalizedAdapter> adapter(int64_t rank, std::mt19937& g) {
  auto a = std::make_shared<lora::NormalizedAdapter>();
  a->name = "a";
  a->linears.push_back({0, 0, rank, randn({rank, kIn}, g), randn({kOut, rank}, g)});
  a->experts.push_back({0, 0, rank, randn({kExperts, rank, kIn}, g), randn({kExperts, kOut, rank}, g)});
  return a;
}

// Bytes of one slot's block over every buffer of the pool (A, B and rank of each slice).
size_t slot_bytes(const LoraWeights& w) {
  size_t n = 0;
  auto add = [&](const LoraTargetWeights& t) {
    for (const auto& s : t.slices) n += (s.A.nbytes() + s.B.nbytes() + s.rank.nbytes()) / w.slots;
  };
  for (const auto& t : w.linears) add(t);
  for (const auto& t : w.experts) add(t);
  add(w.embedding);
  return n;
}

bool same_bytes(const LoraWeights& a, const LoraWeights& b) {
  auto eq = [](const LoraTargetWeights& x, const LoraTargetWeights& y) {
    if (x.slices.size() != y.slices.size() || x.slot_active != y.slot_active) return false;
    for (size_t k = 0; k < x.slices.size(); ++k)
      for (auto [p, q] : {std::pair{&x.slices[k].A, &y.slices[k].A}, std::pair{&x.slices[k].B, &y.slices[k].B},
                          std::pair{&x.slices[k].rank, &y.slices[k].rank}})
        if (p->nbytes() != q->nbytes() || std::memcmp(p->raw(), q->raw(), p->nbytes()) != 0) return false;
    return true;
  };
  for (size_t i = 0; i < a.linears.size(); ++i)
    if (!eq(a.linears[i], b.linears[i])) return false;
  for (size_t i = 0; i < a.experts.size(); ++i)
    if (!eq(a.experts[i], b.experts[i])) return false;
  return a.linears.size() == b.linears.size() && a.experts.size() == b.experts.size();
}

struct Counting {
  size_t bytes = 0;
  int64_t copies = 0, uploads = 0;
  LoraMirror mirror{host_allocator(),
                    [this](void* dst, const void* src, size_t n) {
                      bytes += n;
                      ++copies;
                      std::memcpy(dst, src, n);
                    },
                    [this](const Tensor& t) {
                      ++uploads;
                      return t.clone();
                    }};
};

}  // namespace

TEST(LoraMirror, ALoadCopiesOnlyTheLoadedSlot) {
  std::mt19937 g(3);
  Targets m(g);
  lora::LoraPool pool(m.targets, kSlots, kMaxR);
  Counting c;
  c.mirror.sync(pool);  // start-up: buffers allocated and zeroed, nothing copied
  EXPECT_EQ(c.bytes, 0u);
  EXPECT_TRUE(same_bytes(c.mirror.weights(), pool.weights()));

  const size_t per_slot = slot_bytes(pool.weights());
  ASSERT_GT(per_slot, 0u);
  auto a = adapter(2, g), b = adapter(3, g);
  pool.acquire(a);
  c.mirror.sync(pool);
  EXPECT_EQ(c.bytes, per_slot);  // one slot of every buffer, not all kSlots
  pool.acquire(b);
  c.mirror.sync(pool);
  EXPECT_EQ(c.bytes, 2 * per_slot);
  EXPECT_TRUE(same_bytes(c.mirror.weights(), pool.weights()));

  c.mirror.sync(pool);  // nothing loaded since: nothing copied
  EXPECT_EQ(c.bytes, 2 * per_slot);
}

TEST(LoraMirror, EvictCopiesNothingAndClearsTheFlags) {
  std::mt19937 g(4);
  Targets m(g);
  lora::LoraPool pool(m.targets, kSlots, kMaxR);
  Counting c;
  auto a = adapter(2, g);
  const int32_t s = pool.acquire(a);
  c.mirror.sync(pool);  // first sync with a loaded slot: that slot only
  const size_t per_slot = slot_bytes(pool.weights());
  EXPECT_EQ(c.bytes, per_slot);
  EXPECT_TRUE(c.mirror.weights().linears[0].slot_active[s]);
  EXPECT_TRUE(c.mirror.weights().experts[0].slot_active[s]);

  pool.evict(*a);
  c.mirror.sync(pool);
  EXPECT_EQ(c.bytes, per_slot);
  EXPECT_FALSE(c.mirror.weights().linears[0].slot_active[s]);
  EXPECT_FALSE(c.mirror.weights().experts[0].slot_active[s]);

  // The slot is reused: its zeroing and the new adapter's rows go up together, one slot's worth.
  auto b = adapter(1, g);
  EXPECT_EQ(pool.acquire(b), s);
  c.mirror.sync(pool);
  EXPECT_EQ(c.bytes, 2 * per_slot);
  EXPECT_TRUE(same_bytes(c.mirror.weights(), pool.weights()));
}

TEST(LoraMirror, BuffersKeepTheirAddressesAcrossLoads) {
  // Captured CUDA graphs hold the buffers' device pointers: a load must write into the same blocks.
  std::mt19937 g(5);
  Targets m(g);
  lora::LoraPool pool(m.targets, kSlots, kMaxR);
  Counting c;
  c.mirror.sync(pool);
  const void* A = c.mirror.weights().experts[0].slices[0].A.raw();
  auto a = adapter(2, g);
  pool.acquire(a);
  c.mirror.sync(pool);
  EXPECT_EQ(c.mirror.weights().experts[0].slices[0].A.raw(), A);
  EXPECT_FALSE(c.mirror.has_deltas());
  EXPECT_EQ(c.uploads, 0);
}
