#pragma once
// Scoring: log P(token[i+1] | tokens[0..i]) for whole sequences, run through the same step loop the server's
// scheduler uses: sequences are packed into steps of at most `max_batch_tokens` rows, each sequence advancing by
// at most `prefill_chunk` tokens per step (chunk = 1 is token-by-token decoding).
#include <optional>
#include <string>
#include <vector>

#include "models/model.h"

namespace hylora {

struct ScoreRequest {
  std::string id;
  std::vector<int32_t> input_ids;
  std::optional<std::string> lora;  // adapter name, or nullopt for the base model
};

struct ScoreResult {
  std::string id;
  std::vector<double> logprobs;  // len(input_ids) - 1 values
  std::string error;             // non-empty when this request failed (others are unaffected)
};

struct ScoreOptions {
  int64_t max_batch_tokens = 4096;
  int64_t prefill_chunk = 512;
};

// Binds the requests of one step to adapters; implemented by lora/. Returns the applier for a step whose spans
// belong to `requests` (index per span), or null when the step has no adapter rows.
class LoraStepBinder {
 public:
  virtual ~LoraStepBinder() = default;
  // Checks a request's adapter name; returns an error message, or "" when it can be served.
  virtual std::string check(const std::optional<std::string>& lora) const = 0;
  // Max distinct adapters in one step (requests wait for a later step beyond that).
  virtual int64_t max_adapters_per_step() const = 0;
  virtual const LoraApplier* bind(const ForwardBatch& batch, const std::vector<std::optional<std::string>>& span_lora) = 0;
};

std::vector<ScoreResult> score_requests(Model& model, const std::vector<ScoreRequest>& requests,
                                        const ScoreOptions& options, LoraStepBinder* lora = nullptr);

}  // namespace hylora
