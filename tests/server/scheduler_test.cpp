// Scheduler over the real executor on the tiny Qwen3.5 fixture: preemption (recompute) and every admission bound
// leave each greedy result equal to the same request run alone; adapter slots are never over-used; a request
// waiting for an adapter slot is not starved; stop conditions; cancellation frees everything.
#include <gtest/gtest.h>

#include <thread>

#include "engine/executor.h"
#include "scheduler/scheduler.h"
#include "server_test_support.h"

namespace hylora {
namespace {
using scheduler::FinishReason;
using scheduler::GenerationRequest;
using scheduler::Scheduler;
using test::RecordingSink;

const std::string kCase = HYLORA_FIXTURES_DIR "/qwen3_5_causal_lora";

std::vector<int32_t> prompt(int n, int seed) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back((seed * 131 + i * 71) % 500);
  return p;
}

struct Run {
  std::shared_ptr<RecordingSink> sink = std::make_shared<RecordingSink>();
};

GenerationRequest greedy(std::vector<int32_t> p, int64_t max_new, std::shared_ptr<const lora::NormalizedAdapter> a,
                         std::shared_ptr<RecordingSink> sink) {
  GenerationRequest g;
  g.prompt = std::move(p);
  g.adapter = std::move(a);
  g.sampling.temperature = 0;
  g.max_new_tokens = max_new;
  g.ignore_eos = true;
  g.sink = std::move(sink);
  return g;
}

std::vector<int32_t> alone(Executor& ex, const std::vector<int32_t>& p, int64_t max_new,
                           std::shared_ptr<const lora::NormalizedAdapter> a) {
  Scheduler s(ex, nullptr, {});
  auto sink = std::make_shared<RecordingSink>();
  s.submit(greedy(p, max_new, std::move(a), sink));
  s.run_until_idle();
  return sink->tokens;
}

ExecutorOptions options(int64_t slots, int64_t kv_tokens = 0) {
  ExecutorOptions o;
  o.max_lora_rank = 16;
  o.max_loras_per_batch = slots;
  o.kv_cache_tokens = kv_tokens;
  o.page_size = 16;
  return o;
}

TEST(Scheduler, PreemptionByRecomputeGivesTheSameTokensAsAlone) {
  // 6 pages of 16 tokens; 4 requests of 12 + 30 tokens need 3 pages each at the end: some must be preempted.
  Executor ex(kCase + "/model", options(2, 96));
  auto a = ex.load_adapter("full_r16", kCase + "/adapters/full_r16");
  std::vector<std::vector<int32_t>> want;
  for (int i = 0; i < 4; ++i) want.push_back(alone(ex, prompt(12, i), 30, i % 2 ? a : nullptr));
  Scheduler s(ex, nullptr, {});
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (int i = 0; i < 4; ++i) {
    sinks.push_back(std::make_shared<RecordingSink>());
    s.submit(greedy(prompt(12, i), 30, i % 2 ? a : nullptr, sinks.back()));
  }
  s.run_until_idle();
  EXPECT_GT(s.stats().preemptions.load(), 0);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(sinks[i]->reason, FinishReason::kLength);
    EXPECT_EQ(sinks[i]->tokens, want[i]) << "request " << i;
  }
  EXPECT_EQ(ex.free_kv_pages(), ex.kv_pages_total());
  EXPECT_EQ(ex.free_sequences(), ex.options().max_sequences);
}

TEST(Scheduler, MoreAdaptersThanSlotsWaitAndNeverOverflowASlot) {
  Executor ex(kCase + "/model", options(1));
  std::vector<std::shared_ptr<const lora::NormalizedAdapter>> ads = {
      ex.load_adapter("full_r16", kCase + "/adapters/full_r16"),
      ex.load_adapter("mixed_r4", kCase + "/adapters/mixed_r4"),
      ex.load_adapter("partial", kCase + "/adapters/partial"), nullptr};
  std::vector<std::vector<int32_t>> want;
  for (int i = 0; i < 8; ++i) want.push_back(alone(ex, prompt(5 + i, i), 6, ads[i % 4]));
  scheduler::SchedulerOptions so;
  so.max_batch_tokens = 64;
  so.prefill_chunk = 7;  // prompts longer than a chunk are prefilled over several steps
  Scheduler s(ex, nullptr, so);
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (int i = 0; i < 8; ++i) {
    sinks.push_back(std::make_shared<RecordingSink>());
    s.submit(greedy(prompt(5 + i, i), 6, ads[i % 4], sinks.back()));
  }
  s.run_until_idle();
  // An over-full step would have been refused by the executor (PoolExhausted) and shed as a preemption.
  EXPECT_EQ(s.stats().preemptions.load(), 0);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(sinks[i]->tokens, want[i]) << "request " << i;
}

// One slot; adapter A is busy with a stream of requests, B arrives second. With a zero skip budget nobody passes B:
// it finishes before every A request that came after it. With a long budget the later A requests pass it.
// A base-model request queued last (it holds no adapter slot) passes B either way.
int64_t b_finish_position(int64_t wait_ms) {
  Executor ex(kCase + "/model", options(1));
  auto A = ex.load_adapter("full_r16", kCase + "/adapters/full_r16");
  auto B = ex.load_adapter("mixed_r4", kCase + "/adapters/mixed_r4");
  scheduler::SchedulerOptions so;
  so.max_adapter_wait = std::chrono::milliseconds(wait_ms);
  Scheduler s(ex, nullptr, so);
  int64_t order = 0;
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (int i = 0; i < 6; ++i) {
    sinks.push_back(std::make_shared<RecordingSink>());
    sinks.back()->order_counter = &order;
    s.submit(greedy(prompt(4, i), 4, i == 1 ? B : A, sinks.back()));
  }
  auto base = std::make_shared<RecordingSink>();
  base->order_counter = &order;
  s.submit(greedy(prompt(4, 9), 4, nullptr, base));
  s.run_until_idle();
  EXPECT_LT(base->finish_order, sinks[1]->finish_order);
  return sinks[1]->finish_order;
}

TEST(Scheduler, ARequestWaitingForAnAdapterSlotIsNotStarved) {
  EXPECT_EQ(b_finish_position(0), 2);      // right after the A request that held the slot (and the base request)
  EXPECT_EQ(b_finish_position(60000), 6);  // without the bound, all later A requests pass it
}

TEST(Scheduler, StopConditions) {
  Executor ex(kCase + "/model", options(2));
  const auto p = prompt(6, 1);
  const auto ref = alone(ex, p, 8, nullptr);
  scheduler::SchedulerOptions so;
  so.eos_token_ids = {ref[2]};
  Scheduler s(ex, nullptr, so);
  auto eos = std::make_shared<RecordingSink>(), ignore = std::make_shared<RecordingSink>(),
       stop_id = std::make_shared<RecordingSink>(), stop_string = std::make_shared<RecordingSink>();
  auto g = greedy(p, 8, nullptr, eos);
  g.ignore_eos = false;
  s.submit(g);
  s.submit(greedy(p, 8, nullptr, ignore));  // ignore_eos: runs to max_new_tokens
  g = greedy(p, 8, nullptr, stop_id);
  g.stop_token_ids = {ref[1]};
  s.submit(g);
  stop_string->stop_after_token = ref[3];  // the sink reports a matched stop string after this token
  s.submit(greedy(p, 8, nullptr, stop_string));
  s.run_until_idle();
  auto upto = [&](int32_t t) {  // the reference up to and including the first `t`
    return std::vector<int32_t>(ref.begin(), std::find(ref.begin(), ref.end(), t) + 1);
  };
  EXPECT_EQ(eos->tokens, upto(ref[2]));
  EXPECT_EQ(eos->reason, FinishReason::kStop);
  EXPECT_EQ(ignore->tokens, ref);
  EXPECT_EQ(ignore->reason, FinishReason::kLength);
  EXPECT_EQ(stop_id->tokens, upto(ref[1]));
  EXPECT_EQ(stop_id->reason, FinishReason::kStop);
  EXPECT_EQ(stop_string->tokens, upto(ref[3]));
  EXPECT_EQ(stop_string->reason, FinishReason::kStop);
}

TEST(Scheduler, PromptLogprobsEqualTheExecutorsRows) {
  Executor ex(kCase + "/model", options(2));
  const auto p = prompt(20, 3);
  SeqId q = ex.open_sequence();
  StepOutput all = ex.execute({{q, p, nullptr, RowOutput::kAll}});
  ex.release_sequence(q);
  const int64_t V = ex.info().vocab_size;
  scheduler::SchedulerOptions so;
  so.prefill_chunk = 6;  // over several chunks
  Scheduler s(ex, nullptr, so);
  auto sink = std::make_shared<RecordingSink>();
  auto g = greedy(p, 2, nullptr, sink);
  g.prompt_logprob_start = 5;
  s.submit(g);
  s.run_until_idle();
  EXPECT_EQ(sink->prompt_logprob_start, 5);
  ASSERT_EQ(sink->prompt_logprobs.size(), 15u);
  for (int i = 5; i < 20; ++i)
    EXPECT_NEAR(sink->prompt_logprobs[i - 5], log_softmax(all.logits.f32() + (i - 1) * V, V)[p[i]], 1e-4);
  // max_new_tokens 0: the prompt's logprobs and nothing else.
  auto only = std::make_shared<RecordingSink>();
  g = greedy(p, 0, nullptr, only);
  g.prompt_logprob_start = 0;
  s.submit(g);
  s.run_until_idle();
  EXPECT_TRUE(only->tokens.empty());
  EXPECT_EQ(only->reason, FinishReason::kLength);
  EXPECT_EQ(only->prompt_logprobs.size(), 19u);
}

TEST(Scheduler, CancelOnTheEngineThreadFreesPagesAndSlots) {
  Executor ex(kCase + "/model", options(2));
  Scheduler s(ex, nullptr, {});
  s.start();
  auto sink = std::make_shared<RecordingSink>();
  const uint64_t id = s.submit(greedy(prompt(8, 1), 100000, nullptr, sink));
  for (int i = 0; i < 200 && s.stats().generated_tokens.load() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  s.cancel(id);
  for (int i = 0; i < 200 && !sink->finished; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(sink->finished);
  EXPECT_EQ(sink->reason, FinishReason::kAbort);
  for (int i = 0; i < 50 && s.stats().running.load() != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(s.stats().running.load(), 0);
  EXPECT_EQ(s.stats().free_kv_pages.load(), s.stats().kv_pages_total.load());
  s.stop();
}

// The n choices of one API request go in together: the engine thread, however it is woken, admits them in one step
// (so a seeded request sees the same batches every time it is sent). Each choice here ends after its first token,
// so a group that went in together takes exactly one step.
TEST(Scheduler, AGroupIsAdmittedInOneStep) {
  Executor ex(kCase + "/model", options(2));
  Scheduler s(ex, nullptr, {});
  s.start();
  for (int round = 0; round < 10; ++round) {
    std::vector<GenerationRequest> group;
    std::vector<std::shared_ptr<RecordingSink>> sinks;
    for (int i = 0; i < 3; ++i) {
      sinks.push_back(std::make_shared<RecordingSink>());
      group.push_back(greedy(prompt(6, round * 3 + i), 1, nullptr, sinks.back()));
    }
    const int64_t before = s.stats().steps.load();
    EXPECT_EQ(s.submit_group(std::move(group)).size(), 3u);
    for (auto& sink : sinks)
      for (int i = 0; i < 500 && !sink->finished; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    for (auto& sink : sinks) ASSERT_TRUE(sink->finished);
    EXPECT_EQ(s.stats().steps.load() - before, 1) << "round " << round;
  }
  s.stop();
}

}  // namespace
}  // namespace hylora
