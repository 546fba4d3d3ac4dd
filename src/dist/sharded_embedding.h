#pragma once
// The vocabulary-split embedding (docs/multi_gpu.md §2.1, §3): a row-parallel projection over the one-hot
// vocabulary. Rank r holds table rows [v0, v0 + V_local) plus one zero row that ids held elsewhere look up, and the
// same vocabulary columns of every slot's LoRA A (plus a zero column); the partial lookup and the partial LoRA
// shrink go through one all-reduce, then the expand with the replicated B. (The zero row keeps the CPU reference on
// the existing ops; a GPU kernel would mask out-of-range ids instead.)
#include "dist/communicator.h"
#include "dist/shard_plan.h"
#include "ops/lora.h"

namespace hylora::dist {

struct EmbeddingShard {
  Range vocab;                // ids this rank holds
  Tensor table;               // [V_local + 1, H], last row zero
  ops::LoraSliceBuffers lora; // A [slots, max_r, V_local + 1] (last column zero), B [slots, H, max_r], rank [slots]
  bool has_lora = false;
};

// table [V, H]; lora: the embedding's one slice buffers (A [slots, max_r, V], B [slots, H, max_r]) or nullptr.
EmbeddingShard shard_embedding(const ProjectionPlan& plan, int rank, const Tensor& table,
                               const ops::LoraSliceBuffers* lora);

// local [T] = id − v0 for an id in `vocab`, else V_local (the zero row). ids [T] int32.
void localize_ids(const Tensor& ids, Range vocab, Tensor& local);

// y [T, H] = table[ids] + LoRA, the same on every rank. ids [T] int32 (global ids).
void sharded_embedding(ExecCtx& ctx, Communicator& comm, const EmbeddingShard& e, const Tensor& ids,
                       const ops::LoraSegments& seg, Tensor& y);

}  // namespace hylora::dist
