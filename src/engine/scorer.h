#pragma once
// Scoring: log P(token[i+1] | tokens[0..i]) for whole sequences, as a client of the Executor: sequences are admitted
// while the executor has sequence slots and KV pages for their whole length, and packed into steps of at most
// `max_batch_tokens` rows, each sequence advancing by at most `prefill_chunk` tokens per step (chunk = 1 is
// token-by-token decoding). Each step mixes prefill chunks of different sequences and adapters.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/executor.h"

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

// Adapters by the names requests use.
using AdapterSet = std::map<std::string, std::shared_ptr<const lora::NormalizedAdapter>>;

std::vector<ScoreResult> score_requests(Executor& executor, const std::vector<ScoreRequest>& requests,
                                        const ScoreOptions& options, const AdapterSet& adapters = {});

}  // namespace hylora
