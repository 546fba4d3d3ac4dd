#pragma once
// Host-side sampling of one token from one row of fp32 logits. Everything that selects is computed in fp64
// (design.md: fp32 or better for whatever selects), and the result depends only on (logits, params, seed,
// position): the same request with the same seed gives the same tokens whatever else shares its steps.
#include <cstdint>
#include <vector>

namespace hylora {

struct SamplingParams {
  double temperature = 1.0;  // 0 = greedy (argmax, lowest id on ties)
  int64_t top_k = 0;         // 0 or negative = all tokens
  double top_p = 1.0;        // (0, 1]
  double min_p = 0.0;        // [0, 1]: drop tokens with p < min_p * p_max
  uint64_t seed = 0;         // the server draws one when the request gives none
};

struct TokenLogprob {
  int32_t id = 0;
  double logprob = 0;
};

struct SampledToken {
  int32_t id = 0;
  double logprob = 0;              // log-softmax of the raw logits (before temperature/filters), fp64
  std::vector<TokenLogprob> top;   // the `top_n` most likely tokens under the same distribution, best first
};

// Throws hylora::Error when the params are out of range (the server checks them first).
void validate_sampling_params(const SamplingParams& p);

// `position` = index of the token being generated within its request (0 for the first new token).
SampledToken sample_token(const float* logits, int64_t vocab, const SamplingParams& p, int64_t position,
                          int64_t top_n);

// The SampledToken of `id` in one row: its log-softmax (fp64) and the `top_n` most likely tokens. sample_token ends
// with it; the executor calls it for a token drawn on the GPU when the request asks for top logprobs.
SampledToken describe_token(const float* logits, int64_t vocab, int32_t id, int64_t top_n);

// log-softmax (fp64) of one row; used for prompt logprobs as well.
std::vector<double> log_softmax(const float* logits, int64_t vocab);

}  // namespace hylora
