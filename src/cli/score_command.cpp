#include "cli/commands.h"
#include "core/error.h"

namespace hylora::cli {
int run_score_command(int, char**) { fail("score: not implemented yet"); }
}  // namespace hylora::cli
