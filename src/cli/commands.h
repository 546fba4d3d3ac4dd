#pragma once
// Subcommands of the hylora binary. argv[0] is the subcommand's own name.
namespace hylora::cli {
int run_score_command(int argc, char** argv);
// `hylora tokenize` and `hylora chat-template`: JSONL on stdin, one JSON object per input line on stdout. A bad
// input line prints "line N: <reason>" on stderr and {"error": "<reason>"} in its place on stdout (so output lines
// stay aligned with input lines); processing continues and the exit code is 1 when any line failed. Blank input
// lines are skipped.
int run_tokenize_command(int argc, char** argv);
int run_chat_template_command(int argc, char** argv);
// `hylora serve`: the HTTP server (docs/server.md).
int run_serve_command(int argc, char** argv);
// `hylora bench`: the workloads of docs/performance.md on a config's shapes with random weights.
int run_bench_command(int argc, char** argv);
// `hylora graph-check FIXTURES_DIR` (hidden, GPU machine): CUDA-graph decode steps vs eager on golden fixtures;
// PASS/FAIL lines, exit 1 on any failure (graph_check_command.cpp).
int run_graph_check_command(int argc, char** argv);
// `hylora dist-check --tp N` (hidden, GPU machines): the launcher and the NCCL collectives (dist_check_command.cpp).
int run_dist_check_command(int argc, char** argv);
// The process's whole command line (main's argv), for the launcher to start a rank as a copy of this process.
char** process_argv();
}  // namespace hylora::cli
