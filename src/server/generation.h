#pragma once
// The bridge between one HTTP request (n choices) and the scheduler: each choice's RequestSink turns tokens into
// text deltas (stop strings included) on the engine thread and queues them on the request's Channel, which the
// HTTP thread drains. Channels are keyed by nothing but their owner: the HTTP thread holds it, sinks hold it too.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/request.h"

namespace hylora {
namespace text {
class Tokenizer;
class StreamDecoder;
}
namespace lora {
class AdapterRegistry;
}
namespace server {

struct ServerMetrics;

struct ChoiceEvent {
  enum class Kind { kToken, kPromptLogprobs, kFinish };
  Kind kind = Kind::kToken;
  int choice = 0;
  SampledToken token;           // kToken
  std::string text;             // kToken: text that became final with it (may be empty); kFinish: the rest
  scheduler::FinishReason reason = scheduler::FinishReason::kStop;  // kFinish
  std::string message;                                              // kFinish with kError
  std::string matched_stop;                                         // kFinish: the stop string that matched
  int64_t prompt_logprob_start = 0;                                 // kPromptLogprobs
  std::vector<double> prompt_logprobs;
};

class Channel {
 public:
  explicit Channel(int choices) : open_(choices) {}
  void push(ChoiceEvent ev);
  // Waits up to `timeout` for the next event; nullopt on timeout. After every choice finished and the queue is
  // empty, returns nullopt at once (check done()).
  std::optional<ChoiceEvent> pop(std::chrono::milliseconds timeout);
  bool done();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ChoiceEvent> q_;
  int open_;
};

struct ChoiceSinkOptions {
  const text::Tokenizer* tokenizer = nullptr;  // null: no text (ids only)
  std::vector<std::string> stop;               // stop strings (need a tokenizer)
  std::string adapter;                         // released in the registry when the choice finishes
  lora::AdapterRegistry* registry = nullptr;
  ServerMetrics* metrics = nullptr;
};

class ChoiceSink : public scheduler::RequestSink {
 public:
  ChoiceSink(std::shared_ptr<Channel> channel, int choice, ChoiceSinkOptions options);
  ~ChoiceSink() override;
  bool on_token(const scheduler::TokenEvent& ev) override;
  void on_prompt_logprobs(int64_t start, const std::vector<double>& logprobs) override;
  void on_finish(scheduler::FinishReason reason, const std::string& message) override;

 private:
  std::string take_final_text(bool all);

  std::shared_ptr<Channel> channel_;
  int choice_;
  ChoiceSinkOptions opt_;
  std::unique_ptr<text::StreamDecoder> decoder_;
  std::string text_;       // decoded so far (cut at a matched stop string)
  size_t emitted_ = 0;     // bytes of text_ already sent
  size_t max_stop_ = 0;    // longest stop string
  bool stopped_ = false;
  std::string matched_;
  std::chrono::steady_clock::time_point start_, last_;
  bool first_ = true;
};

}  // namespace server
}  // namespace hylora
