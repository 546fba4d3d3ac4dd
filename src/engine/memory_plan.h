#pragma once
// Sizing the KV cache from GPU memory (--mem-fraction). The executor places the weights and the adapter slots first;
// then everything it will still hold must fit under fraction × total memory:
//
//   used (measured now: weights, LoRA slots, the CUDA context, other processes) + pending (still to allocate: the
//   state slots of --max-sequences sequences, weights not placed yet) + scratch reserve (one step's temporaries)
//   + pages × page_bytes  ≤  fraction × total
//
// and the pages are as many as fit (or exactly the --kv-cache-tokens asked for), capped at what --max-sequences
// sequences of the model's longest length can use and at the int32 page ids. A plan that cannot hold even one
// full step's pages is an Error at start-up naming the bytes needed and available, so a model that does not fit
// never starts serving (no request can crash on memory the plan promised).
#include <cstdint>

namespace hylora {

struct MemoryPlanInput {
  double fraction = 0.9;        // share of the device's memory hylora may hold (0, 1]
  int64_t total_bytes = 0;      // the device's memory
  int64_t used_bytes = 0;       // in use now (total − free)
  int64_t pending_bytes = 0;    // still to allocate besides the pages and the scratch (state slots, unplaced weights)
  int64_t scratch_bytes = 0;    // reserve for a step's temporaries (scratch_reserve_bytes)
  int64_t page_bytes = 0;       // one KV page over every paged layer (0: the model has no paged layers)
  int64_t min_pages = 1;        // fewest pages worth starting with (one full step's worth)
  int64_t requested_pages = 0;  // > 0: exactly this many (--kv-cache-tokens); 0: as many as fit
  int64_t max_pages = 0;        // > 0: never more (what every sequence at full length could use, the int32 ids)
};

// KV pages to allocate; throws Error("... needs N bytes ... M are available ...") when the plan does not fit.
int64_t plan_kv_pages(const MemoryPlanInput& in);

// Reserve for one step's temporaries: the logits of up to max_batch_tokens rows plus ~32 hidden-wide float32
// activations per row (residual stream, fused projections, MLP / MoE intermediates of one layer), and 64 MiB for the
// cuBLASLt workspace and small per-step buffers. An estimate (the models do not declare their peak): steps that
// need more grow the scratch arena into the headroom above the fraction. (The chunked GDN prefill's workspace,
// ops/cuda/gdn_chunked.h, comes from this arena: ~74 KB a token at Qwen3.5-4B shapes, up to ~200 KB with many short
// sequences, against the ~327 KB a token of the 32 hidden-wide rows.)
int64_t scratch_reserve_bytes(int64_t max_batch_tokens, int64_t vocab_size, int64_t hidden_size);

}  // namespace hylora
