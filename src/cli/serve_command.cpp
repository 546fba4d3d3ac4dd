// hylora serve: the HTTP server (docs/server.md). Builds the executor, the adapter registry, the scheduler's
// engine thread and the HTTP front end, prints one line `listening on http://HOST:PORT` once the socket accepts
// connections, and serves until SIGINT/SIGTERM.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/commands.h"
#include "cli/device_options.h"
#include "cli/lora_options.h"
#include "cli/tensor_parallel_options.h"
#include "engine/executor.h"
#include "lora/adapter_registry.h"
#include "scheduler/generation_config.h"
#include "scheduler/scheduler.h"
#include "server/http_server.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace hylora::cli {

namespace {
// The name clients use for the base model: the directory's name (its parent's when it is just "model").
std::string default_model_name(const std::string& dir) {
  std::filesystem::path p = std::filesystem::absolute(dir).lexically_normal();  // symlinks kept: their name counts
  if (p.filename().empty()) p = p.parent_path();
  if (p.filename() == "model" && p.has_parent_path()) return p.parent_path().filename().string();
  return p.filename().string();
}
}  // namespace

int run_serve_command(int argc, char** argv) {
  CLI::App app{"Serve a model and its LoRA adapters over HTTP (OpenAI-compatible + native endpoints)",
               "hylora serve"};
  std::string model_dir, served_name;
  DeviceOptions dev_opts;
  LoraOptions lora_opts;
  ExecutorOptions ex_opt;
  scheduler::SchedulerOptions sched_opt;
  server::ServerOptions srv_opt;
  server::ServerLimits limits;
  int64_t max_loaded = 64, adapter_wait_ms = 1000, max_prompt = 0;
  ex_opt.max_batch_tokens = 512;
  app.add_option("--model", model_dir, "model directory (config.json + safetensors [+ tokenizer.json])")->required();
  add_lora_options(app, lora_opts);
  app.add_option("--host", srv_opt.host, "address to bind (default 127.0.0.1: this machine only)");
  app.add_option("--port", srv_opt.port, "port (0 = any free port)")->check(CLI::Range(0, 65535));
  add_device_options(app, dev_opts);
  TensorParallelOptions tp_opts;
  add_tensor_parallel_options(app, tp_opts);
  app.add_option("--max-loaded-loras", max_loaded, "adapters kept in host memory (LRU beyond)")
      ->check(CLI::PositiveNumber);
  app.add_option("--api-key", srv_opt.api_key, "require Authorization: Bearer KEY on every endpoint");
  app.add_option("--lora-root", srv_opt.lora_root, "directory under which /load_lora_adapter may read adapters");
  app.add_option("--served-model-name", served_name, "name of the base model in the API (default: the directory)");
  app.add_option("--max-batch-tokens", ex_opt.max_batch_tokens, "tokens per engine step")->check(CLI::PositiveNumber);
  app.add_option("--prefill-chunk", sched_opt.prefill_chunk, "prompt tokens of one request per step")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-running", ex_opt.max_sequences, "requests generating at once (sequence slots)")
      ->check(CLI::PositiveNumber);
  app.add_option("--page-size", ex_opt.page_size, "tokens per KV page")->check(CLI::PositiveNumber);
  app.add_option("--max-adapter-wait-ms", adapter_wait_ms,
                 "how long later requests may pass one that waits for an adapter slot")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-body-bytes", srv_opt.max_body_bytes, "largest request body")->check(CLI::PositiveNumber);
  app.add_option("--body-timeout", srv_opt.body_timeout_s, "seconds a request body may stall")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-connections", srv_opt.threads, "HTTP connections served at once")->check(CLI::PositiveNumber);
  app.add_option("--max-n", limits.max_n, "largest n (choices per request)")->check(CLI::PositiveNumber);
  app.add_option("--max-new-tokens", limits.max_new_tokens, "largest max_tokens / max_new_tokens")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-prompt-tokens", max_prompt, "longest prompt (default and cap: the model's context - 1)")
      ->check(CLI::NonNegativeNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  dev_opts.apply(ex_opt);
  if (lora_opts.max_loras_per_batch > 1024) fail("--max-loras-per-batch ", lora_opts.max_loras_per_batch, " > 1024");
  ex_opt.max_lora_rank = lora_opts.max_lora_rank;
  ex_opt.max_loras_per_batch = lora_opts.max_loras_per_batch;
  if (!srv_opt.lora_root.empty() && !std::filesystem::is_directory(srv_opt.lora_root))
    fail("--lora-root ", srv_opt.lora_root, " is not a directory");

  // SIGINT/SIGTERM go to one thread that stops the server (blocked here, before any thread starts).
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a client that goes away must not kill the server

  return with_executor(model_dir, ex_opt, tp_opts, [&](Executor& executor) {
    lora::AdapterRegistry registry(
        [&executor](const std::string& name, const std::string& dir) { return executor.load_adapter(name, dir); },
        max_loaded, lora_opts.max_loras_per_batch - 1);
    for (auto& spec : lora_opts.adapters) {
      const auto eq = spec.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) fail("--lora ", spec, ": expected NAME=DIR");
      registry.load(spec.substr(0, eq), spec.substr(eq + 1), false);
    }

    server::ModelContext ctx;
    ctx.base_name = served_name.empty() ? default_model_name(model_dir) : served_name;
    std::unique_ptr<text::Tokenizer> tokenizer;
    std::unique_ptr<text::ChatTemplate> chat_template;
    if (std::filesystem::exists(std::filesystem::path(model_dir) / "tokenizer.json")) {
      tokenizer = text::Tokenizer::from_directory(model_dir);
      try {
        chat_template = text::ChatTemplate::from_directory(model_dir);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "hylora serve: no chat template (%s); /v1/chat/completions is refused\n", e.what());
      }
    } else {
      std::fprintf(stderr, "hylora serve: %s has no tokenizer.json: token ids only (text is null)\n", model_dir.c_str());
    }
    ctx.tokenizer = tokenizer.get();
    ctx.chat_template = chat_template.get();
    const int64_t ctx_len = executor.info().max_position_embeddings;
    limits.max_prompt_tokens = ctx_len > 1 ? ctx_len - 1 : 1 << 20;
    if (max_prompt > 0) limits.max_prompt_tokens = std::min(limits.max_prompt_tokens, max_prompt);
    limits.vocab_size = executor.info().vocab_size;
    ctx.limits = limits;

    sched_opt.max_batch_tokens = ex_opt.max_batch_tokens;
    sched_opt.max_adapter_wait = std::chrono::milliseconds(adapter_wait_ms);
    sched_opt.eos_token_ids = scheduler::read_eos_token_ids(model_dir);
    scheduler::Scheduler sched(executor, &registry, sched_opt);
    sched.start();

    server::HttpServer http(sched, registry, ctx, srv_opt);
    const int port = http.bind();
    std::thread signals([&] {
      int sig = 0;
      sigwait(&sigs, &sig);
      http.stop();
    });
    std::printf("listening on http://%s:%d\n", srv_opt.host.c_str(), port);
    std::fflush(stdout);
    http.listen();
    sched.stop();
    if (signals.joinable()) {
      pthread_kill(signals.native_handle(), SIGTERM);  // wakes the waiting thread when listen() ended otherwise
      signals.join();
    }
    return 0;
  });
}

}  // namespace hylora::cli
