// hylora score: JSONL requests in, JSONL log-probabilities out (interface fixed by the engine-core issue).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/lora_options.h"
#include "engine/executor.h"
#include "engine/scorer.h"

namespace hylora::cli {

namespace {
using json = nlohmann::json;

// Parses one request line; on failure returns a request with an empty id and sets `error`.
ScoreRequest parse_request(const std::string& line, int64_t line_no, std::string& error) {
  ScoreRequest r;
  json j;
  try {
    j = json::parse(line);
  } catch (const std::exception& e) {
    error = "line " + std::to_string(line_no) + ": not valid JSON (" + e.what() + ")";
    return r;
  }
  if (!j.is_object()) {
    error = "line " + std::to_string(line_no) + ": expected a JSON object";
    return r;
  }
  if (j.contains("id") && j["id"].is_string())
    r.id = j["id"].get<std::string>();
  else if (j.contains("id") && j["id"].is_number_integer())
    r.id = std::to_string(j["id"].get<int64_t>());
  else
    r.id = "line " + std::to_string(line_no);
  if (!j.contains("input_ids") || !j["input_ids"].is_array()) {
    error = "request " + r.id + ": field \"input_ids\" must be an array of token ids";
    return r;
  }
  for (auto& t : j["input_ids"]) {
    if (!t.is_number_integer()) {
      error = "request " + r.id + ": input_ids must hold integers, found " + t.dump();
      return r;
    }
    int64_t v = t.get<int64_t>();
    if (v < INT32_MIN || v > INT32_MAX) {
      error = "request " + r.id + ": token id " + std::to_string(v) + " is out of range";
      return r;
    }
    r.input_ids.push_back(static_cast<int32_t>(v));
  }
  if (j.contains("lora") && !j["lora"].is_null()) {
    if (!j["lora"].is_string()) {
      error = "request " + r.id + ": field \"lora\" must be an adapter name or null";
      return r;
    }
    r.lora = j["lora"].get<std::string>();
  }
  return r;
}
}  // namespace

int run_score_command(int argc, char** argv) {
  CLI::App app{"Score token sequences: reads JSONL requests on stdin, writes JSONL log-probabilities to stdout.\n"
               "request: {\"id\": \"r1\", \"input_ids\": [12, 7, ...], \"lora\": null}\n"
               "result:  {\"id\": \"r1\", \"logprobs\": [...]}  (log P(input_ids[i+1] | input_ids[..i]))",
               "hylora score"};
  std::string model_dir, device = "cpu", dtype = "float32";
  LoraOptions lora_opts;
  ScoreOptions opts;
  app.add_option("--model", model_dir, "model directory (config.json + safetensors)")->required();
  app.add_option("--device", device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--dtype", dtype, "float32 or bfloat16")->check(CLI::IsMember({"float32", "bfloat16"}));
  add_lora_options(app, lora_opts);
  app.add_option("--max-batch-tokens", opts.max_batch_tokens, "rows per forward step")->check(CLI::PositiveNumber);
  app.add_option("--prefill-chunk", opts.prefill_chunk, "max new tokens of one sequence per step (1 = decode)")
      ->check(CLI::PositiveNumber);
  ExecutorOptions ex_opts;
  app.add_option("--max-sequences", ex_opts.max_sequences, "sequences scored at once (state slots)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--kv-cache-tokens", ex_opts.kv_cache_tokens, "KV cache capacity in tokens (0 = default)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 32));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (device == "cuda")
    fail("--device cuda: the CUDA backend is not available in this build yet; use --device cpu");
  if (dtype != "float32") fail("--dtype ", dtype, ": the CPU reference backend computes in float32 only");

  ex_opts.max_lora_rank = lora_opts.max_lora_rank;
  ex_opts.max_loras_per_batch = lora_opts.max_loras_per_batch;
  ex_opts.max_batch_tokens = opts.max_batch_tokens;
  Executor executor(model_dir, ex_opts);
  const AdapterSet adapters = load_adapters(executor, lora_opts);

  std::vector<ScoreRequest> requests;
  std::vector<std::string> parse_errors;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string err;
    requests.push_back(parse_request(line, line_no, err));
    parse_errors.push_back(err);
  }
  if (requests.empty()) fail("no requests on standard input (expected one JSON object per line)");

  // Malformed requests are reported in place; the others are scored together.
  std::vector<ScoreRequest> valid;
  std::vector<size_t> valid_index;
  for (size_t i = 0; i < requests.size(); ++i)
    if (parse_errors[i].empty()) {
      valid.push_back(requests[i]);
      valid_index.push_back(i);
    }
  auto scored = score_requests(executor, valid, opts, adapters);
  std::vector<ScoreResult> results(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) results[i] = {requests[i].id, {}, parse_errors[i]};
  for (size_t k = 0; k < valid.size(); ++k) results[valid_index[k]] = scored[k];

  int status = 0;
  for (auto& r : results) {
    json out;
    out["id"] = r.id;
    if (!r.error.empty()) {
      out["error"] = r.error;
      std::fprintf(stderr, "hylora score: error: %s\n", r.error.c_str());
      status = 1;
    } else {
      std::string s = "{\"id\":" + json(r.id).dump() + ",\"logprobs\":[";
      char buf[32];
      for (size_t i = 0; i < r.logprobs.size(); ++i) {
        std::snprintf(buf, sizeof buf, "%s%.9g", i ? "," : "", r.logprobs[i]);
        s += buf;
      }
      std::cout << s << "]}\n";
      continue;
    }
    std::cout << out.dump() << "\n";
  }
  return status;
}

}  // namespace hylora::cli
