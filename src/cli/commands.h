#pragma once
// Subcommands of the hylora binary. argv[0] is the subcommand's own name.
namespace hylora::cli {
int run_score_command(int argc, char** argv);
int run_serve_command(int argc, char** argv);
}
