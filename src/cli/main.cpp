// hylora: one binary, subcommands. Each subcommand lives in its own file and returns an exit code.
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "cli/commands.h"
#include "core/error.h"

namespace hylora::cli {
namespace {
char** g_argv = nullptr;
}
char** process_argv() { return g_argv; }
}  // namespace hylora::cli

namespace {
void print_usage() {
  std::fprintf(stderr,
               "usage: hylora <command> [options]\n"
               "commands:\n"
               "  score           log-probabilities of token sequences (JSONL in, JSONL out)\n"
                "  serve           HTTP server: OpenAI-compatible + native endpoints, LoRA adapters at runtime\n"
               "  tokenize        text <-> token ids with a model's tokenizer.json\n"
               "  chat-template   render chat messages with a model's chat template\n"
               "  bench           speed of a config's shapes (random weights) against the hardware's floors\n"
               "run 'hylora <command> --help' for the options of one command\n");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  hylora::cli::g_argv = argv;
  std::string cmd = argv[1];
  try {
    if (cmd == "score") return hylora::cli::run_score_command(argc - 1, argv + 1);
    if (cmd == "serve") return hylora::cli::run_serve_command(argc - 1, argv + 1);
    if (cmd == "tokenize") return hylora::cli::run_tokenize_command(argc - 1, argv + 1);
    if (cmd == "bench") return hylora::cli::run_bench_command(argc - 1, argv + 1);
    if (cmd == "graph-check") return hylora::cli::run_graph_check_command(argc - 1, argv + 1);
    if (cmd == "dist-check") return hylora::cli::run_dist_check_command(argc - 1, argv + 1);
    if (cmd == "chat-template") return hylora::cli::run_chat_template_command(argc - 1, argv + 1);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "hylora %s: error: out of memory (an allocation failed; lower the sizes the options ask "
                 "for)\n", cmd.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hylora %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
  std::fprintf(stderr, "hylora: unknown command '%s'\n", cmd.c_str());
  print_usage();
  return 2;
}
