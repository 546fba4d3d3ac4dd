// hylora: one binary, subcommands. Each subcommand lives in its own file and returns an exit code.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#ifdef HYLORA_HAVE_TEXT
#include "text/text_commands.h"
#endif

namespace {
void print_usage() {
  std::fprintf(stderr,
               "usage: hylora <command> [options]\n"
               "commands:\n"
               "  score           log-probabilities of token sequences (JSONL in, JSONL out)\n"
               "  serve           HTTP server: OpenAI-compatible + native endpoints, LoRA adapters at runtime\n"
#ifdef HYLORA_HAVE_TEXT
               "  tokenize        text <-> token ids with a model's tokenizer.json\n"
               "  chat-template   render chat messages with a model's chat template\n"
#endif
               "run 'hylora <command> --help' for the options of one command\n");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "score") return hylora::cli::run_score_command(argc - 1, argv + 1);
    if (cmd == "serve") return hylora::cli::run_serve_command(argc - 1, argv + 1);
#ifdef HYLORA_HAVE_TEXT
    if (cmd == "tokenize") return run_tokenize_command(argc - 1, argv + 1);
    if (cmd == "chat-template") return run_chat_template_command(argc - 1, argv + 1);
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hylora %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
  std::fprintf(stderr, "hylora: unknown command '%s'\n", cmd.c_str());
  print_usage();
  return 2;
}
