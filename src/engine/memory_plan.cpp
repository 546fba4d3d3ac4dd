#include "engine/memory_plan.h"

#include <algorithm>
#include <sstream>

#include "core/error.h"

namespace hylora {

namespace {
std::string mib(int64_t bytes) {
  std::ostringstream s;
  s << bytes << " bytes (" << (bytes >> 20) << " MiB)";
  return s.str();
}
}  // namespace

int64_t plan_kv_pages(const MemoryPlanInput& in) {
  HYLORA_CHECK(in.fraction > 0.0 && in.fraction <= 1.0, "--mem-fraction ", in.fraction,
               ": must be in (0, 1], the share of the GPU's memory hylora may use");
  const int64_t budget = static_cast<int64_t>(in.fraction * static_cast<double>(in.total_bytes)) - in.used_bytes;
  const int64_t fixed = in.pending_bytes + in.scratch_bytes;
  const int64_t want_pages = in.requested_pages > 0 ? in.requested_pages : std::max<int64_t>(in.min_pages, 0);
  const int64_t needed = fixed + want_pages * in.page_bytes;
  if (needed > budget)
    fail("the model does not fit in GPU memory: it needs ", mib(needed), " more (", mib(in.pending_bytes),
         " of weights / state slots still to place, a scratch reserve of ", mib(in.scratch_bytes), ", ", want_pages,
         " KV pages of ", in.page_bytes, " bytes", in.requested_pages > 0 ? " for --kv-cache-tokens" : " for one full step",
         ") but ", mib(std::max<int64_t>(budget, 0)), " are available (--mem-fraction ", in.fraction, " of ",
         mib(in.total_bytes), ", ", mib(in.used_bytes), " already in use); raise --mem-fraction, lower "
         "--max-batch-tokens / --max-sequences / --kv-cache-tokens, or store the weights in --dtype bfloat16");
  if (in.requested_pages > 0 || in.page_bytes == 0) return want_pages;
  int64_t pages = (budget - fixed) / in.page_bytes;
  if (in.max_pages > 0) pages = std::min(pages, std::max(in.max_pages, want_pages));
  return pages;
}

int64_t scratch_reserve_bytes(int64_t max_batch_tokens, int64_t vocab_size, int64_t hidden_size) {
  return max_batch_tokens * (vocab_size + 32 * hidden_size) * static_cast<int64_t>(sizeof(float)) + (int64_t{64} << 20);
}

}  // namespace hylora
