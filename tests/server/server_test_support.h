#pragma once
// Helpers for the serving tests: a sink that records what the scheduler sends.
#include <mutex>
#include <string>
#include <vector>

#include "scheduler/request.h"

namespace hylora::test {

struct RecordingSink : scheduler::RequestSink {
  std::mutex mu;
  std::vector<int32_t> tokens;
  std::vector<SampledToken> sampled;
  std::vector<double> prompt_logprobs;
  int64_t prompt_logprob_start = -1;
  bool finished = false;
  scheduler::FinishReason reason = scheduler::FinishReason::kError;
  std::string message;
  int64_t finish_order = -1;
  int64_t* order_counter = nullptr;  // shared by the sinks of one test: the order in which requests finished
  int32_t stop_after_token = -1;     // simulate a matched stop string

  bool on_token(const scheduler::TokenEvent& ev) override {
    std::lock_guard<std::mutex> l(mu);
    tokens.push_back(ev.token.id);
    sampled.push_back(ev.token);
    return ev.token.id == stop_after_token;
  }
  void on_prompt_logprobs(int64_t start, const std::vector<double>& lps) override {
    prompt_logprob_start = start;
    prompt_logprobs = lps;
  }
  void on_finish(scheduler::FinishReason r, const std::string& m) override {
    std::lock_guard<std::mutex> l(mu);
    finished = true;
    reason = r;
    message = m;
    if (order_counter) finish_order = (*order_counter)++;
  }
};

}  // namespace hylora::test
