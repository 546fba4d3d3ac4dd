#pragma once
// Turns the JSON body of /v1/completions, /v1/chat/completions and /generate into one ParsedRequest, checking
// every field's type and range (ApiError 400 naming the field) and the server's limits.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/sampler.h"

namespace hylora {
namespace text {
class Tokenizer;
class ChatTemplate;
}
namespace server {

struct ServerLimits {
  int64_t max_n = 16;
  int64_t max_new_tokens = 4096;
  int64_t max_prompt_tokens = 32768;  // also ≤ the model's max_position_embeddings
  int64_t max_stop_strings = 16;
  int64_t max_top_logprobs = 20;
  int64_t vocab_size = 0;
};

struct ParsedRequest {
  std::vector<int32_t> prompt;
  std::string model;    // as the request named it (echoed back)
  std::string adapter;  // "" = the base model
  SamplingParams sampling;
  int64_t max_new_tokens = 16;
  bool ignore_eos = false;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  int64_t n = 1;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;
  int64_t top_logprobs = 0;
  int64_t prompt_logprob_start = -1;
};

// What the parser needs to know about the served model.
struct ModelContext {
  std::string base_name;
  const text::Tokenizer* tokenizer = nullptr;  // null: token ids only
  const text::ChatTemplate* chat_template = nullptr;
  ServerLimits limits;
  // Maps a `model` value to an adapter name ("" = base); throws ApiError 404 for an unknown one.
  std::function<std::string(const std::string& model)> resolve_model;
};

enum class Endpoint { kCompletions, kChat, kGenerate };

// `body` keeps the client's key order (parse_json_body): the chat template sees messages and tools as sent.
ParsedRequest parse_request(const nlohmann::ordered_json& body, Endpoint endpoint, const ModelContext& ctx);

}  // namespace server
}  // namespace hylora
