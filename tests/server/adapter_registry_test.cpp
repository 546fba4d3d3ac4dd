// Adapter registry: LRU host cache that never drops an adapter in flight or pinned, re-reads dropped adapters,
// unload refuses new requests at once and frees the entry when the last request finishes.
#include <gtest/gtest.h>

#include "lora/adapter_registry.h"
#include "lora/normalized_adapter.h"

namespace hylora::lora {
namespace {

struct Fixture {
  int reads = 0;
  AdapterRegistry reg{[this](const std::string& name, const std::string& dir) {
                        if (dir == "bad") throw Error("adapter " + name + ": broken");
                        ++reads;
                        auto a = std::make_shared<NormalizedAdapter>();
                        a->name = name;
                        a->dir = dir;
                        return std::shared_ptr<const NormalizedAdapter>(a);
                      },
                      /*max_loaded=*/2, /*max_pinned=*/1};
};

size_t count(const std::vector<SlotAction>& v, SlotAction::Kind k) {
  return std::count_if(v.begin(), v.end(), [k](auto& a) { return a.kind == k; });
}

TEST(AdapterRegistry, LruDropsTheOldestIdleAdapterAndRereadsItOnDemand) {
  Fixture f;
  f.reg.load("a", "da", false);
  f.reg.load("b", "db", false);
  f.reg.release("a");  // no-op: not held
  auto held = f.reg.acquire("a");  // a is newer than b now, and in flight
  f.reg.load("c", "dc", false);    // over the limit: b (idle, oldest) goes
  EXPECT_EQ(f.reg.in_host_memory(), 2);
  EXPECT_EQ(f.reg.host_evictions(), 1);
  auto actions = f.reg.take_slot_actions();
  ASSERT_EQ(count(actions, SlotAction::Kind::kEvict), 1u);
  EXPECT_EQ(actions[0].adapter->name, "b");
  EXPECT_TRUE(f.reg.contains("b"));  // still registered
  const int reads = f.reads;
  auto b = f.reg.acquire("b");  // re-read from disk
  EXPECT_EQ(f.reads, reads + 1);
  EXPECT_EQ(b->name, "b");
  // a and b are held, c is idle: c goes, the held ones stay even over the limit.
  EXPECT_EQ(f.reg.in_host_memory(), 2);
  EXPECT_EQ(f.reg.list().size(), 3u);
  f.reg.release("a");
  f.reg.release("b");
}

TEST(AdapterRegistry, PinnedAdaptersAreNeverDropped) {
  Fixture f;
  f.reg.load("p", "dp", true);
  EXPECT_EQ(count(f.reg.take_slot_actions(), SlotAction::Kind::kPin), 1u);
  f.reg.load("a", "da", false);
  f.reg.load("b", "db", false);
  f.reg.load("c", "dc", false);
  for (auto& i : f.reg.list())
    if (i.name == "p") {
      EXPECT_TRUE(i.in_host_memory);
    }
  try {
    f.reg.load("q", "dq", true);
    FAIL() << "a second pin was accepted with max_pinned 1";
  } catch (const AdapterError& e) {
    EXPECT_EQ(e.kind(), AdapterError::Kind::kTooManyPinned);
  }
}

TEST(AdapterRegistry, UnloadRefusesNewRequestsAtOnceAndFreesWhenTheLastFinishes) {
  Fixture f;
  f.reg.load("a", "da", false);
  f.reg.take_slot_actions();
  auto h = f.reg.acquire("a");
  f.reg.unload("a");
  EXPECT_FALSE(f.reg.contains("a"));
  EXPECT_TRUE(f.reg.list().empty());
  try {
    f.reg.acquire("a");
    FAIL();
  } catch (const AdapterError& e) {
    EXPECT_EQ(e.kind(), AdapterError::Kind::kUnloading);
  }
  EXPECT_TRUE(f.reg.take_slot_actions().empty());  // still in flight: its slot stays
  EXPECT_THROW(f.reg.load("a", "da", false), AdapterError);  // the name is still taken
  f.reg.release("a");
  EXPECT_EQ(count(f.reg.take_slot_actions(), SlotAction::Kind::kEvict), 1u);
  f.reg.load("a", "da2", false);  // the name is free again
  EXPECT_TRUE(f.reg.contains("a"));
}

TEST(AdapterRegistry, BadLoadsAndUnknownNamesAreTypedErrors) {
  Fixture f;
  auto kind_of = [](auto&& fn) {
    try {
      fn();
    } catch (const AdapterError& e) {
      return e.kind();
    }
    return AdapterError::Kind::kExists;  // never expected here
  };
  EXPECT_EQ(kind_of([&] { f.reg.load("x", "bad", false); }), AdapterError::Kind::kInvalid);
  EXPECT_FALSE(f.reg.contains("x"));
  EXPECT_EQ(kind_of([&] { f.reg.unload("nope"); }), AdapterError::Kind::kNotFound);
  EXPECT_EQ(kind_of([&] { f.reg.acquire("nope"); }), AdapterError::Kind::kNotFound);
  EXPECT_EQ(kind_of([&] { f.reg.load("a:b", "d", false); }), AdapterError::Kind::kInvalid);
}

}  // namespace
}  // namespace hylora::lora
