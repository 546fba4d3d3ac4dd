// hylora score: JSONL requests in, JSONL log-probabilities out (interface fixed by the engine-core issue).
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/device_options.h"
#include "cli/jsonl_io.h"
#include "cli/lora_options.h"
#include "cli/score_request.h"
#include "cli/tensor_parallel_options.h"
#include "core/json_limits.h"
#include "engine/executor.h"
#include "engine/scorer.h"
#include "text/utf8.h"

namespace hylora::cli {

namespace {
using json = nlohmann::json;

// The first non-finite value, or -1: a NaN or Inf log-probability is an error for that request, never "nan" in
// the output (not JSON) with exit 0.
int64_t first_non_finite(const std::vector<double>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) return static_cast<int64_t>(i);
  return -1;
}

// Requests read but not yet answered: scored and written one window at a time, so memory is bounded by the window,
// not by the input.
class Window {
 public:
  Window(Executor& executor, const AdapterSet& adapters, const ScoreOptions& opts)
      : executor_(executor), adapters_(adapters), opts_(opts) {}
  void add(ScoreRequest r, std::string error) {
    tokens_ += static_cast<int64_t>(r.input_ids.size());
    requests_.push_back(std::move(r));
    errors_.push_back(std::move(error));
  }
  int64_t size() const { return static_cast<int64_t>(requests_.size()); }
  int64_t tokens() const { return tokens_; }

  // Scores the valid requests, writes every result in input order, empties the window. Returns false when
  // writing failed (stop reading). `status` becomes 1 when a request failed.
  bool flush(int& status) {
    std::vector<ScoreRequest> valid;
    std::vector<size_t> valid_index;
    for (size_t i = 0; i < requests_.size(); ++i)
      if (errors_[i].empty()) {
        valid.push_back(std::move(requests_[i]));
        valid_index.push_back(i);
      }
    std::vector<ScoreResult> results(requests_.size());
    for (size_t i = 0; i < requests_.size(); ++i) results[i] = {requests_[i].id, {}, errors_[i]};
    if (!valid.empty()) {
      auto scored = score_requests(executor_, valid, opts_, adapters_);
      for (size_t k = 0; k < valid.size(); ++k) results[valid_index[k]] = std::move(scored[k]);
    }
    requests_.clear();
    errors_.clear();
    tokens_ = 0;
    bool ok = true;
    for (auto& r : results) {
      if (r.error.empty())
        if (int64_t bad = first_non_finite(r.logprobs); bad >= 0)
          r.error = "request " + r.id + ": log-probability " + std::to_string(bad) + " is not finite (" +
                    (std::isnan(r.logprobs[bad]) ? "NaN" : "Inf") +
                    "): the forward pass overflowed float32 (weights or adapter scale too large)";
      if (!r.error.empty()) {
        const std::string msg = text::to_valid_utf8(r.error);
        std::fprintf(stderr, "hylora score: error: %s\n", msg.c_str());
        status = 1;
        json out;
        out["id"] = r.id;
        out["error"] = msg;
        ok = write_out(json_line(out)) && ok;
        continue;
      }
      std::string s = "{\"id\":" + json(r.id).dump(-1, ' ', false, json::error_handler_t::replace) + ",\"logprobs\":[";
      char buf[32];
      for (size_t i = 0; i < r.logprobs.size(); ++i) {
        std::snprintf(buf, sizeof buf, "%s%.9g", i ? "," : "", r.logprobs[i]);
        s += buf;
      }
      ok = write_out(s + "]}\n") && ok;
    }
    return ok && std::fflush(stdout) == 0;
  }

 private:
  Executor& executor_;
  const AdapterSet& adapters_;
  const ScoreOptions& opts_;
  std::vector<ScoreRequest> requests_;
  std::vector<std::string> errors_;
  int64_t tokens_ = 0;
};
}  // namespace

int run_score_command(int argc, char** argv) {
  CLI::App app{"Score token sequences: reads JSONL requests on stdin, writes JSONL log-probabilities to stdout.\n"
               "request: {\"id\": \"r1\", \"input_ids\": [12, 7, ...], \"lora\": null}\n"
               "result:  {\"id\": \"r1\", \"logprobs\": [...]}  (log P(input_ids[i+1] | input_ids[..i]))",
               "hylora score"};
  std::string model_dir;
  DeviceOptions dev_opts;
  LoraOptions lora_opts;
  ScoreOptions opts;
  int64_t max_line_bytes = kDefaultMaxLineBytes, window_requests = 1024, window_tokens = 32768;
  app.add_option("--model", model_dir, "model directory (config.json + safetensors)")->required();
  add_device_options(app, dev_opts);
  add_lora_options(app, lora_opts);
  TensorParallelOptions tp_opts;
  add_tensor_parallel_options(app, tp_opts);
  app.add_option("--max-batch-tokens", opts.max_batch_tokens, "rows per forward step")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  app.add_option("--prefill-chunk", opts.prefill_chunk, "max new tokens of one sequence per step (1 = decode)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  add_max_line_bytes_option(app, max_line_bytes, "request");
  app.add_option("--window-requests", window_requests,
                 "requests read ahead and scored together; memory is bounded by the window, not the input")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--window-tokens", window_tokens, "tokens read ahead (a longer request is scored alone)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  ExecutorOptions ex_opts;
  app.add_option("--max-sequences", ex_opts.max_sequences, "sequences scored at once (state slots)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  dev_opts.apply(ex_opts);

  require_directory("--model", model_dir);
  ex_opts.max_lora_rank = lora_opts.max_lora_rank;
  ex_opts.max_loras_per_batch = lora_opts.max_loras_per_batch;
  ex_opts.max_batch_tokens = opts.max_batch_tokens;
  return with_executor(model_dir, ex_opts, tp_opts, [&](Executor& executor) {
    const AdapterSet adapters = load_adapters(executor, lora_opts);
    const int64_t max_positions = executor.info().max_position_embeddings;

    // Malformed requests are reported in place; the others of a window are scored together.
    Window window(executor, adapters, opts);
    LineReader reader(stdin, max_line_bytes);
    const JsonLimits line_limits{static_cast<size_t>(max_line_bytes), json_limits::kMaxDepth};
    std::string line;
    bool too_long = false, any = false, writing = true;
    int64_t length = 0;
    int status = 0;
    while (writing && reader.next(line, too_long, length)) {
      const int64_t line_no = reader.line_no();
      if (!too_long && line.find_first_not_of(" \t\r") == std::string::npos) continue;
      any = true;
      std::string err;
      ScoreRequest r;
      if (too_long) {
        r.id = "line " + std::to_string(line_no);
        err = "line " + std::to_string(line_no) + ": " + reader.too_long_error(length);
      } else {
        r = parse_score_request(line, line_no, err, line_limits);
      }
      if (err.empty() && max_positions > 0 && static_cast<int64_t>(r.input_ids.size()) > max_positions)
        err = "request " + r.id + ": " + std::to_string(r.input_ids.size()) +
              " tokens is over the model's max_position_embeddings (" + std::to_string(max_positions) + ")";
      if (!err.empty()) r.input_ids.clear();
      window.add(std::move(r), std::move(err));
      if (window.size() >= window_requests || window.tokens() >= window_tokens) writing = window.flush(status);
    }
    if (writing && window.size() > 0) writing = window.flush(status);
    if (!finish_output("score")) return 1;
    if (!any) fail("no requests on standard input (expected one JSON object per line)");
    return status;
  });
}

}  // namespace hylora::cli
