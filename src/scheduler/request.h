#pragma once
// A generation request as the scheduler sees it, and the sink its results go to. The scheduler knows nothing of
// HTTP or text: the server turns a body into a GenerationRequest and a RequestSink that writes the answer.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/sampler.h"

namespace hylora {
namespace lora {
struct NormalizedAdapter;
}

namespace scheduler {

enum class FinishReason { kStop, kLength, kAbort, kError };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "abort", "error"

struct TokenEvent {
  SampledToken token;
  int64_t index = 0;  // 0-based index of this token in the request's output
};

// Called on the engine thread; implementations must not block for long (queue the event and return).
class RequestSink {
 public:
  virtual ~RequestSink() = default;
  // Returns true when the request must stop after this token (a stop string matched): it finishes with kStop.
  virtual bool on_token(const TokenEvent& ev) = 0;
  // logprobs[i] = log P(prompt[start + i] | prompt[..start + i]), sent once before the first token.
  virtual void on_prompt_logprobs(int64_t /*start*/, const std::vector<double>& /*logprobs*/) {}
  // Last call for the request. `message` explains kError.
  virtual void on_finish(FinishReason reason, const std::string& message) = 0;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;                             // non-empty, ids inside the vocabulary
  std::shared_ptr<const lora::NormalizedAdapter> adapter;  // null = base model
  SamplingParams sampling;
  int64_t max_new_tokens = 16;
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;  // besides the model's EOS ids
  bool token_logprobs = true;           // each token's log-probability is reported (false: a GPU step skips it)
  int64_t top_logprobs = 0;             // alternatives reported with each token
  int64_t prompt_logprob_start = -1;    // >= 0: report prompt logprobs from this position on (SGLang's
                                        // logprob_start_len)
  std::shared_ptr<RequestSink> sink;
};

}  // namespace scheduler
}  // namespace hylora
