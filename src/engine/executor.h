#pragma once
// Executor: the one object that owns a loaded model's weights, its cache pools (paged KV pages, recurrent state
// slots) and its LoRA slots, and runs one step at a time. Its clients — `hylora score`, the scheduler behind
// `hylora serve`, `hylora bench` — speak to the engine only through this header:
//
//   SeqId s = ex.open_sequence();                     // takes a state slot; pages come as tokens arrive
//   StepOutput out = ex.execute({{s, tokens, adapter, RowOutput::kAll}, ...});
//   ... out.logits rows of each work ...
//   ex.release_sequence(s);                           // frees its pages and slot
//
// A step is any mix of prefill chunks and decodes of different sequences, each bound to its own adapter (or none).
// Capacity is checked before anything changes: a step that does not fit throws PoolExhausted and leaves every
// sequence as it was, so a scheduler can shrink the step or preempt and try again.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "engine/sampler.h"
#include "kv/pool_exhausted.h"

namespace hylora {

class Model;
struct LoraWeights;
class LeaderChannel;
namespace dist {
class Communicator;
struct ShardPlan;
}
namespace lora {
struct NormalizedAdapter;
}

// CUDA graphs for decode steps (engine/cuda_graph_runner.h). Ignored on the CPU.
enum class CudaGraphs {
  kOff,       // every step eager, unpadded (as before graphs existed)
  kDecode,    // decode steps padded to their bucket and replayed as captured graphs; other steps eager
  kPadOnly,   // decode steps padded like kDecode but run eagerly (checks: the padding's effect without the capture's)
};

struct ExecutorOptions {
  Device device = Device::CPU;
  // Weight dtype: F32, or BF16 on the GPU (the big matrices stored in bf16, models/weight_precision.h; activations,
  // norms, caches and states stay float32, accumulation fp32). The CPU reference computes in float32 only.
  DType dtype = DType::F32;
  int64_t max_lora_rank = 64;        // every adapter module's rank must be ≤ this (lora.md §3)
  int64_t max_loras_per_batch = 8;   // adapter slots: distinct adapters one step may use
  int64_t max_batch_tokens = 4096;   // rows (new tokens) one step may hold
  int64_t max_sequences = 256;       // live sequences at once (one recurrent state slot each)
  // KV capacity in tokens shared by all sequences; 0 = 65536 on the CPU, as many as mem_fraction leaves on the GPU.
  int64_t kv_cache_tokens = 0;
  int64_t page_size = 16;            // tokens per KV page
  // GPU: the share of the device's memory the executor may hold (weights, adapter slots, state slots, a scratch
  // reserve and the KV pages, sized at construction; engine/memory_plan.h). A model that does not fit is an Error
  // from the constructor. Ignored on the CPU.
  double mem_fraction = 0.9;
  // GPU: decode steps as CUDA graphs (--cuda-graphs on|off). Steps with prefill rows, MLA models (DeepSeek: the
  // absorbed-MLA op uploads a per-step weight table) and steps while any adapter slot holds a modules_to_save
  // replacement run eagerly.
  CudaGraphs cuda_graphs = CudaGraphs::kDecode;
  // GPU: each LoRA shrink runs on a second stream beside its projection's base GEMM (--lora-overlap on|off; the
  // results are the same bits either way, models/linear_forward.cpp).
  bool lora_overlap = true;
  // Tensor parallel: this rank's group, for a rank's shard model (dist/shard_model.h); every rank's executor must
  // get the same works in the same order. Null on one rank (no collectives at all).
  dist::Communicator* communicator = nullptr;
  // With `communicator`: the plan the rank's shard model was cut by (dist/shard_model.h). load_adapter then validates
  // the PEFT files against the whole model's shapes and returns this rank's shard of the adapter
  // (lora/shard_adapter.h), so a rank reads the same files one GPU would. Null: the model is whole.
  const dist::ShardPlan* shard_plan = nullptr;
};

// What the graph path did so far (tests, checks, metrics).
struct CudaGraphStats {
  int64_t warmups = 0;   // first step of a graph shape, run eagerly
  int64_t captures = 0;  // graphs recorded
  int64_t replays = 0;   // steps that replayed a graph
  int64_t eager = 0;     // padded steps run eagerly after a failed or dropped capture
  int64_t dropped = 0;   // graphs dropped because the scratch arena moved
  int64_t graphs = 0;    // graphs held now
};

// What clients need to know about the loaded model.
struct ModelInfo {
  std::string architecture;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t max_position_embeddings = 0;  // longest sequence the model serves (0 = no limit in its config)
};

using SeqId = int64_t;

// Which rows of a work the step returns logits for.
enum class RowOutput {
  kNone,  // no logits (a prefill chunk that is not the last one)
  kLast,  // the last new token's row (generation)
  kAll,   // every new token's row (scoring)
};

// One sequence's part of a step: `tokens` are appended after the sequence's cached ones (a whole prompt, a chunk of
// it, or one decoded token).
// The next token of a sequence, drawn inside the step from the work's last row (generation). On a GPU the draw runs
// there (ops::sample_on_device) and only the token comes back, not the row (a 64-row decode step of a 248k
// vocabulary would otherwise copy 64 MB of logits to the host and sort them there); on the CPU it is sample_token.
// Greedy draws are the same on both devices; seeded random draws are reproducible on each device but differ between
// them (the GPU draws by Gumbel-max, ops/cuda/sampling.h).
struct TokenDraw {
  SamplingParams params;
  int64_t position = 0;      // index of the token within its request's output (the draw's reproducible step)
  int64_t top_logprobs = 0;  // > 0: also the most likely tokens (the row then comes to the host on a GPU too)
  // false: the caller will not read the token's log-probability, and a GPU step skips computing it (a pass over the
  // row: ~0.1 ms at a 248k vocabulary); SampledToken::logprob is then NaN. The CPU computes it anyway.
  bool logprob = true;
};

struct SeqWork {
  SeqId seq = -1;
  std::vector<int32_t> tokens;
  std::shared_ptr<const lora::NormalizedAdapter> adapter;  // null = the base model
  RowOutput output = RowOutput::kAll;
  std::optional<TokenDraw> draw{};  // with output kLast or kAll: draw the next token from the last row
};

struct StepOutput {
  // [R, V] float32 on the host: the requested rows, work after work, except the row of a kLast work that draws
  // its token (that work has none)
  Tensor logits;
  std::vector<int64_t> first_row;  // [works] first row of work i in `logits` (it has 0, 1 or tokens.size() rows)
  std::vector<std::optional<SampledToken>> drawn;  // [works] the token of each work with a `draw`
};

class Executor {
 public:
  // Loads <model_dir> (config.json + safetensors) onto options.device.
  Executor(const std::string& model_dir, const ExecutorOptions& options);
  // Runs an already built model (tests use small synthetic ones); the second form does not own it.
  Executor(std::unique_ptr<Model> model, const ExecutorOptions& options);
  Executor(Model& model, const ExecutorOptions& options);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  const ModelInfo& info() const;
  const ExecutorOptions& options() const;
  Model& model();

  // --- adapters ---------------------------------------------------------------------------------------------
  // Parses, validates and normalises a PEFT adapter for this model (lora.md §6); throws Error naming what is wrong.
  // Takes no slot: a step binds adapters to slots as it needs them. Warnings go to the adapter's `warnings`.
  std::shared_ptr<const lora::NormalizedAdapter> load_adapter(const std::string& name, const std::string& dir) const;
  // Distinct adapters one step may use (the slots, less those pinned adapters hold).
  int64_t max_adapters_per_step() const;
  // A pinned adapter keeps its slot between steps (at most max_loras_per_batch − 1 pinned).
  void pin_adapter(const std::shared_ptr<const lora::NormalizedAdapter>& adapter);
  void unpin_adapter(const lora::NormalizedAdapter& adapter);
  // Drops the adapter from its slot, if it has one (after an unload, once no work uses it).
  void evict_adapter(const lora::NormalizedAdapter& adapter);
  // Times an adapter was copied into a slot (for metrics and tests of slot reuse).
  int64_t adapter_slot_loads() const;
  // The slot holding `adapter`, or -1; and the slot buffers themselves (metrics, tests of slot hygiene).
  int32_t adapter_slot(const lora::NormalizedAdapter& adapter) const;
  const LoraWeights& lora_weights() const;

  // --- sequences and capacity -------------------------------------------------------------------------------
  SeqId open_sequence();                   // throws PoolExhausted(kStateSlots) when every slot is taken
  void release_sequence(SeqId seq);        // frees its KV pages and state slot
  int64_t sequence_length(SeqId seq) const;  // tokens cached so far
  int64_t free_sequences() const;          // state slots left
  int64_t free_kv_pages() const;
  int64_t kv_pages_total() const;
  // Pages a sequence needs beyond what it holds to append `new_tokens` more.
  int64_t kv_pages_needed(SeqId seq, int64_t new_tokens) const;

  // --- steps ------------------------------------------------------------------------------------------------
  // Runs one step. Token ids, sequence ids and lengths are checked first (Error), capacity next (PoolExhausted);
  // either way nothing changed. On success every work's tokens are cached in its sequence.
  StepOutput execute(const std::vector<SeqWork>& works);
  CudaGraphStats cuda_graph_stats() const;

  // --- tensor parallel --------------------------------------------------------------------------------------
  // Rank 0 of a group: every call above that changes state is first sent through `channel` to the other ranks,
  // which run it in follow_leader() (engine/rank_channel.h). Null (the default): this executor acts alone.
  void lead(LeaderChannel* channel);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hylora
