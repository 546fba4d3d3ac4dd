#include "engine/executor.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "batch/graph_padding.h"
#include "batch/step_batch.h"
#include "core/exec_ctx.h"
#include "engine/cuda_graph_runner.h"
#include "engine/lora_mirror.h"
#include "engine/memory_plan.h"
#include "engine/rank_channel.h"
#include "kv/cache_pools.h"
#include "lora/adapter_loader.h"
#include "lora/lora_pool.h"
#include "lora/shard_adapter.h"
#include "core/communicator.h"
#include "models/model.h"
#include "models/weight_precision.h"
#include "ops/device.h"

namespace hylora {

namespace {
constexpr int64_t kDefaultCpuKvTokens = 65536;
// Largest decode batch replayed as a graph (bucket_size steps: 1, 2, 4, 8, 16, ... 256, i.e. ≤ 35 shapes per page
// width and LoRA on/off); wider steps are GEMM-bound and gain little from saving launches.
constexpr int64_t kMaxGraphRows = 256;

// Rank 0 of a tensor-parallel group holds its channel for the whole of a call (engine/rank_channel.h).
std::unique_lock<std::recursive_mutex> leader_lock(LeaderChannel* leader) {
  return leader ? leader->hold() : std::unique_lock<std::recursive_mutex>();
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The attention layers' K/V pages: bfloat16 under --dtype bfloat16 on the GPU (half the bytes a decode step reads;
// HF's bf16 attention also sees bf16 K/V), float32 otherwise (the CPU reference, --dtype float32).
DType kv_dtype(const ExecutorOptions& o) {
  return o.device == Device::CUDA && o.dtype == DType::BF16 ? DType::BF16 : DType::F32;
}
}  // namespace

struct Executor::Impl {
  struct Sequence {
    int32_t state_slot = -1;     // recurrent state slot (models with GDN / Mamba2 layers)
    std::vector<int32_t> pages;  // KV pages in order (models with attention layers)
    int64_t length = 0;          // tokens cached
  };

  // Member order matters: on the GPU the pools' page count comes from the memory the weights and adapter slots left
  // (kv_pages() places them), so everything kv_pages() touches is declared before `pools`.
  Impl(std::unique_ptr<Model> owned_model, Model& m, const ExecutorOptions& o)
      : options(o), owned(std::move(owned_model)), model(&m), targets(target_index(m, o)),
        lora(model->lora_targets(), check_options(o), o.max_lora_rank),
        ctx{o.device, nullptr, ScratchArena(ops::allocator_for(o.device))},
        pools(model->cache_specs(), kv_pages(), o.page_size, o.max_sequences, ops::allocator_for(o.device),
              kv_dtype(o)) {
    info.architecture = model->architecture();
    info.vocab_size = model->vocab_size();
    info.hidden_size = model->hidden_size();
    info.num_layers = model->num_layers();
    info.max_position_embeddings = model->max_position_embeddings();
    graphs_possible = o.device == Device::CUDA && o.cuda_graphs != CudaGraphs::kOff && !has_latent_cache(*model);
    // A stream of its own: the legacy default stream cannot be captured, and the ranks of an in-process tensor-parallel
    // group on one device (threads) would serialise on it and sync each other's work at every collective.
    if (graphs_possible || (o.device == Device::CUDA && o.communicator)) ctx.stream = ops::create_stream();
    if (o.device == Device::CUDA && o.lora_overlap && o.max_loras_per_batch > 0)
      ctx.side_stream = ops::create_side_stream();
  }
  // A shard model's adapters are validated against the whole model's shapes (lora/shard_adapter.h).
  static lora::TargetIndex target_index(const Model& m, const ExecutorOptions& o) {
    if (!o.shard_plan) return lora::TargetIndex(m);
    HYLORA_CHECK(o.communicator, "internal: a shard plan without a communicator");
    return lora::TargetIndex(m, lora::whole_target_shapes(m.lora_targets(), *o.shard_plan));
  }
  // MLA's absorbed attention uploads a per-step table of kv_b weight pointers (a synchronising copy): not capturable.
  static bool has_latent_cache(const Model& m) {
    for (const LayerCacheSpec& s : m.cache_specs())
      if (s.kind == LayerCacheSpec::Kind::kLatent) return true;
    return false;
  }
  static int64_t check_options(const ExecutorOptions& o) {
    // First thing the constructor evaluates for a device: refuse a missing CUDA backend or GPU before any allocation.
    HYLORA_CHECK(o.device == Device::CPU || ops::cuda_available(),
                 "--device cuda: no usable CUDA device (or this build has no CUDA backend); use --device cpu");
    HYLORA_CHECK(o.dtype == DType::F32 || (o.device == Device::CUDA && o.dtype == DType::BF16), "--dtype ",
                 dtype_name(o.dtype), ": the ",
                 o.device == Device::CPU ? "CPU reference backend computes in float32 only"
                                         : "CUDA backend stores weights in float32 or bfloat16 only");
    HYLORA_CHECK(o.max_sequences > 0, "max_sequences must be positive, got ", o.max_sequences);
    HYLORA_CHECK(o.page_size > 0, "page_size must be positive, got ", o.page_size);
    HYLORA_CHECK(o.max_batch_tokens > 0, "max_batch_tokens must be positive, got ", o.max_batch_tokens);
    return o.max_loras_per_batch;
  }

  Sequence& seq(SeqId id) {
    auto it = seqs.find(id);
    HYLORA_CHECK(it != seqs.end(), "sequence ", id, " is not open");
    return it->second;
  }
  int64_t pages_needed(const Sequence& s, int64_t new_tokens) const {
    if (!pools.has_paged_layers()) return 0;
    return std::max<int64_t>(0, ceil_div(s.length + new_tokens, options.page_size) - static_cast<int64_t>(s.pages.size()));
  }

  void validate(const std::vector<SeqWork>& works);
  int64_t kv_pages();
  std::map<const void*, DType> weight_dtypes() const;
  void place_weights(const std::map<const void*, DType>& dtypes);
  void sync_lora();
  StepBatch build(const std::vector<SeqWork>& works);
  bool graph_step(const StepBatch& b) const;
  // The step's logits [≥ num_logit_rows, V] on the device (scratch: valid until the next step).
  Tensor run_cuda(const StepBatch& b);
  Tensor run_cuda_padded(const StepBatch& b);
  std::vector<std::optional<SampledToken>> draw_on_device(const std::vector<SeqWork>& works, const Tensor& logits,
                                                          const std::vector<int64_t>& first);

  ExecutorOptions options;
  std::unique_ptr<Model> owned;  // null when the caller owns the model
  Model* model;
  lora::TargetIndex targets;
  lora::LoraPool lora;
  ExecCtx ctx;
  ModelInfo info;
  // GPU only: the adapter slots as the device sees them (a mirror of lora.weights(), the host masters lora/ writes);
  // a load uploads the loaded slot's block of each buffer only.
  LoraMirror dev_lora{
      ops::allocator_for(options.device),
      [this](void* dst, const void* src, size_t bytes) { ops::cuda_backend::memcpy(ctx, dst, src, bytes); },
      [this](const Tensor& t) { return ops::to_device(ctx, t, options.device); }};
  bool graphs_possible = false;
  CudaGraphRunner graphs;
  CachePools pools;
  std::map<SeqId, Sequence> seqs;
  SeqId next_id = 0;
  LeaderChannel* leader = nullptr;  // rank 0 of a tensor-parallel group (engine/rank_channel.h)
};

void Executor::Impl::validate(const std::vector<SeqWork>& works) {
  const int64_t vocab = info.vocab_size;
  int64_t rows = 0, pages = 0;
  std::set<SeqId> seen;
  std::set<const lora::NormalizedAdapter*> adapters;
  for (const SeqWork& w : works) {
    const Sequence& s = seq(w.seq);
    HYLORA_CHECK(seen.insert(w.seq).second, "sequence ", w.seq, " appears twice in one step");
    HYLORA_CHECK(!w.tokens.empty(), "sequence ", w.seq, ": a step must append at least one token");
    for (int32_t t : w.tokens)
      HYLORA_CHECK(t >= 0 && t < vocab, "token id ", t, " is outside the vocabulary [0, ", vocab, ")");
    const int64_t len = s.length + static_cast<int64_t>(w.tokens.size());
    HYLORA_CHECK(info.max_position_embeddings == 0 || len <= info.max_position_embeddings, "sequence of ", len,
                 " tokens is longer than the model's max_position_embeddings (", info.max_position_embeddings, ")");
    if (w.draw) {
      HYLORA_CHECK(w.output != RowOutput::kNone, "sequence ", w.seq, ": a token draw needs the step's last row");
      validate_sampling_params(w.draw->params);
      HYLORA_CHECK(w.draw->position >= 0 && w.draw->top_logprobs >= 0, "sequence ", w.seq,
                   ": a token draw at position ", w.draw->position, " with ", w.draw->top_logprobs, " top logprobs");
    }
    rows += static_cast<int64_t>(w.tokens.size());
    pages += pages_needed(s, static_cast<int64_t>(w.tokens.size()));
    if (w.adapter) adapters.insert(w.adapter.get());
  }
  if (rows > options.max_batch_tokens)
    throw PoolExhausted(PoolExhausted::Kind::kBatchTokens, "a step of " + std::to_string(rows) +
                                                               " tokens exceeds max_batch_tokens " +
                                                               std::to_string(options.max_batch_tokens));
  if (pages > pools.pages().available())
    throw PoolExhausted(PoolExhausted::Kind::kKvPages, "the step needs " + std::to_string(pages) + " KV pages, " +
                                                           std::to_string(pools.pages().available()) + " are free");
  // Pinned adapters used by the step hold their own slots; the others share the unpinned slots.
  int64_t pinned_used = 0;
  for (const auto* a : adapters) {
    const int32_t slot = lora.slot_of(*a);
    pinned_used += slot >= 0 && lora.pinned(slot);
  }
  const int64_t free_slots = lora.num_slots() - lora.num_pinned();
  if (static_cast<int64_t>(adapters.size()) - pinned_used > free_slots)
    throw PoolExhausted(PoolExhausted::Kind::kAdapterSlots,
                        "the step uses " + std::to_string(adapters.size()) + " adapters, " +
                            std::to_string(free_slots) + " unpinned slots are available");
}

StepBatch Executor::Impl::build(const std::vector<SeqWork>& works) {
  StepBatch b;
  const int64_t S = static_cast<int64_t>(works.size());
  int64_t T = 0, R = 0;
  for (const SeqWork& w : works) {
    T += static_cast<int64_t>(w.tokens.size());
    R += w.output == RowOutput::kAll ? static_cast<int64_t>(w.tokens.size()) : w.output == RowOutput::kLast;
  }
  // Pages and adapter slots first (validate() guaranteed they fit).
  std::vector<int32_t> slot_of_work(S, -1);
  std::set<int32_t> in_use;
  int64_t max_pages = 1;
  for (int64_t i = 0; i < S; ++i) {
    const SeqWork& w = works[i];
    Sequence& s = seq(w.seq);
    const int64_t need = pages_needed(s, static_cast<int64_t>(w.tokens.size()));
    if (need > 0) {
      auto got = pools.pages().take(need, PoolExhausted::Kind::kKvPages, "KV pages");
      s.pages.insert(s.pages.end(), got.begin(), got.end());
    }
    max_pages = std::max<int64_t>(max_pages, static_cast<int64_t>(s.pages.size()));
    if (w.adapter) {
      slot_of_work[i] = lora.acquire(w.adapter, in_use);
      in_use.insert(slot_of_work[i]);
    }
  }
  b.num_tokens = T;
  b.num_seqs = S;
  b.padded_tokens = T;  // the CPU runs unpadded; the CUDA graph path pads to bucket_size()
  b.padded_seqs = S;
  b.max_pages = max_pages;
  b.page_size = options.page_size;
  b.num_logit_rows = R;
  // Lay the fields out in one buffer.
  int64_t off = 0;
  auto field = [&](StepBatch::Field& f, int64_t n) {
    f.offset = off;
    f.size = n;
    off += n;
  };
  int64_t lora_rows = 0, lora_logit_rows = 0;
  for (int64_t i = 0; i < S; ++i)
    if (slot_of_work[i] >= 0) {
      lora_rows += static_cast<int64_t>(works[i].tokens.size());
      lora_logit_rows += works[i].output == RowOutput::kAll ? static_cast<int64_t>(works[i].tokens.size())
                                                            : works[i].output == RowOutput::kLast;
    }
  const int64_t G = static_cast<int64_t>(in_use.size());
  int64_t G_logit = 0;
  {
    std::set<int32_t> logit_slots;
    for (int64_t i = 0; i < S; ++i)
      if (slot_of_work[i] >= 0 && works[i].output != RowOutput::kNone) logit_slots.insert(slot_of_work[i]);
    G_logit = static_cast<int64_t>(logit_slots.size());
  }
  field(b.token_ids, T);
  field(b.positions, T);
  field(b.kv_slots, T);
  field(b.row_slot, T);
  field(b.cu_seqlens, S + 1);
  field(b.context_lens, S);
  field(b.state_slots, S);
  field(b.page_table, S * max_pages);
  field(b.logit_rows, R);
  field(b.lora_perm, lora_rows);
  field(b.lora_indptr, G + 1);
  field(b.lora_slot, G);
  field(b.logit_lora_perm, lora_logit_rows);
  field(b.logit_lora_indptr, G_logit + 1);
  field(b.logit_lora_slot, G_logit);
  b.data.assign(off, -1);
  b.num_lora_rows = lora_rows;
  b.num_lora_segments = G;
  b.num_logit_lora_rows = lora_logit_rows;
  b.num_logit_lora_segments = G_logit;

  int64_t row = 0, lrow = 0;
  b.at(b.cu_seqlens)[0] = 0;
  std::vector<int32_t> logit_row_slot;  // slot of each logit row
  for (int64_t i = 0; i < S; ++i) {
    const SeqWork& w = works[i];
    const Sequence& s = seq(w.seq);
    const int64_t n = static_cast<int64_t>(w.tokens.size());
    for (int64_t j = 0; j < n; ++j, ++row) {
      const int64_t pos = s.length + j;
      b.at(b.token_ids)[row] = w.tokens[j];
      b.at(b.positions)[row] = static_cast<int32_t>(pos);
      b.at(b.kv_slots)[row] =
          s.pages.empty() ? -1 : static_cast<int32_t>(s.pages[pos / options.page_size] * options.page_size +
                                                      pos % options.page_size);
      b.at(b.row_slot)[row] = slot_of_work[i];
      const bool logit = w.output == RowOutput::kAll || (w.output == RowOutput::kLast && j == n - 1);
      if (logit) {
        b.at(b.logit_rows)[lrow++] = static_cast<int32_t>(row);
        logit_row_slot.push_back(slot_of_work[i]);
      }
    }
    b.at(b.cu_seqlens)[i + 1] = static_cast<int32_t>(row);
    b.at(b.context_lens)[i] = static_cast<int32_t>(s.length + n);
    b.at(b.state_slots)[i] = s.state_slot;
    for (size_t p = 0; p < s.pages.size(); ++p) b.at(b.page_table)[i * max_pages + p] = s.pages[p];
  }
  // Rows grouped by slot (ascending), row order kept inside a segment; base rows belong to no segment.
  auto group = [&](const std::vector<int32_t>& row_slot, const StepBatch::Field& perm, const StepBatch::Field& indptr,
                   const StepBatch::Field& slot) {
    std::set<int32_t> slots(row_slot.begin(), row_slot.end());
    slots.erase(-1);
    int64_t k = 0, g = 0;
    b.at(indptr)[0] = 0;
    for (int32_t sl : slots) {
      for (size_t r = 0; r < row_slot.size(); ++r)
        if (row_slot[r] == sl) b.at(perm)[k++] = static_cast<int32_t>(r);
      b.at(slot)[g] = sl;
      b.at(indptr)[++g] = static_cast<int32_t>(k);
    }
  };
  group(std::vector<int32_t>(b.at(b.row_slot), b.at(b.row_slot) + T), b.lora_perm, b.lora_indptr, b.lora_slot);
  group(logit_row_slot, b.logit_lora_perm, b.logit_lora_indptr, b.logit_lora_slot);
  return b;
}

// The dtype each host weight is stored in on the device (by storage, so tied weights agree): the compute dtype for
// the matrices models/weight_precision.h lists, float32 for the rest.
std::map<const void*, DType> Executor::Impl::weight_dtypes() const {
  std::map<const void*, DType> out;
  model->for_each_weight([&](Tensor& t) {
    if (t.defined()) out.emplace(t.raw(), DType::F32);
  });
  if (options.dtype != DType::F32)
    for (Tensor* t : compute_dtype_weights(*model))
      if (t->defined()) out[t->raw()] = options.dtype;
  return out;
}

int64_t Executor::Impl::kv_pages() {
  const int64_t tokens = options.kv_cache_tokens;
  if (options.device == Device::CPU) return ceil_div(tokens > 0 ? tokens : kDefaultCpuKvTokens, options.page_size);
  const std::vector<LayerCacheSpec> specs = model->cache_specs();
  MemoryPlanInput in;
  in.fraction = options.mem_fraction;
  in.scratch_bytes = scratch_reserve_bytes(options.max_batch_tokens, model->vocab_size(), model->hidden_size());
  in.page_bytes = static_cast<int64_t>(CachePools::page_bytes(specs, options.page_size, kv_dtype(options)));
  in.min_pages = ceil_div(options.max_batch_tokens, options.page_size);
  in.requested_pages = tokens > 0 ? ceil_div(tokens, options.page_size) : 0;
  // No more pages than every sequence at the model's full length could use, and kv slots (page · page_size +
  // offset) must stay int32.
  in.max_pages = std::numeric_limits<int32_t>::max() / options.page_size;
  if (model->max_position_embeddings() > 0)
    in.max_pages = std::min(in.max_pages,
                            options.max_sequences * ceil_div(model->max_position_embeddings(), options.page_size));
  const int64_t state_bytes = static_cast<int64_t>(CachePools::slot_bytes(specs)) * options.max_sequences;
  auto measure = [&](int64_t pending) {
    const ops::DeviceMemory m = ops::device_memory(options.device);
    in.total_bytes = static_cast<int64_t>(m.total);
    in.used_bytes = static_cast<int64_t>(m.total - m.free);
    in.pending_bytes = pending;
  };
  // Before anything is placed: would weights, the adapter slots' mirror, the states, the scratch and one step's pages
  // fit? (An estimate: the arena rounds blocks up.) The refusal then names every part and nothing was allocated.
  const std::map<const void*, DType> dtypes = weight_dtypes();
  int64_t weight_bytes = 0;
  std::map<const void*, bool> counted;
  model->for_each_weight([&](Tensor& t) {
    if (t.defined() && !counted[t.raw()]) {
      counted[t.raw()] = true;
      weight_bytes += t.numel() * static_cast<int64_t>(dtype_size(dtypes.at(t.raw())));
    }
  });
  int64_t lora_bytes = 0;
  auto count = [&](const LoraTargetWeights& w) {
    for (const auto& sl : w.slices)
      for (const Tensor* t : {&sl.A, &sl.B, &sl.rank})
        if (t->defined()) lora_bytes += static_cast<int64_t>(t->nbytes());
  };
  for (const auto& w : lora.weights().linears) count(w);
  for (const auto& w : lora.weights().experts) count(w);
  count(lora.weights().embedding);
  measure(weight_bytes + lora_bytes + state_bytes);
  plan_kv_pages(in);
  place_weights(dtypes);
  sync_lora();
  // Now from what the device really has left.
  measure(state_bytes);
  return plan_kv_pages(in);
}

void Executor::Impl::place_weights(const std::map<const void*, DType>& dtypes) {
  // Adapter loading computes modules_to_save deltas against the base weights on the host: keep host masters of the
  // LoRA targets (float32) before their weights move.
  // A model already placed by an earlier executor (hylora bench runs several over one model) keeps its masters.
  for (Linear* l : model->lora_targets().linears)
    if (l->weight.device() == Device::CPU) l->host_master = l->weight;
  if (Embedding* e = model->lora_targets().embedding)
    if (e->table.device() == Device::CPU) e->host_master = e->table;
  std::map<const void*, std::vector<Tensor>> placed;  // tied weights (lm_head = embedding table) share one copy
  model->for_each_weight([&](Tensor& t) {
    if (!t.defined() || t.device() == Device::CUDA) return;
    for (const Tensor& d : placed[t.raw()])
      if (d.shape() == t.shape()) {
        t = d;
        return;
      }
    Tensor d = ops::to_device(ctx, t, options.device, dtypes.at(t.raw()));
    placed[t.raw()].push_back(d);
    t = d;
  });
}

void Executor::Impl::sync_lora() { dev_lora.sync(lora); }

bool Executor::Impl::graph_step(const StepBatch& b) const {
  return graphs_possible && !dev_lora.has_deltas() && is_decode_step(b) && b.num_seqs <= kMaxGraphRows;
}

Tensor Executor::Impl::run_cuda(const StepBatch& b) {
  // The step's metadata goes up in one copy and the models see views of it.
  Tensor data = ctx.scratch.tensor({static_cast<int64_t>(b.data.size())}, DType::I32);
  const Tensor host = Tensor::view_of(const_cast<int32_t*>(b.data.data()), data.shape(), DType::I32, nullptr);
  ops::copy_tensor(ctx, host, data);
  const StepTensors step = device_views(b, data);
  ForwardArgs args{ctx, step, pools.layers(), &dev_lora.weights(), options.communicator};
  Tensor logits = ctx.scratch.tensor({b.num_logit_rows, info.vocab_size});
  model->forward(args, logits);
  return logits;
}

Tensor Executor::Impl::run_cuda_padded(const StepBatch& b) {
  // The step at its bucket's fixed layout (batch/graph_padding.h); the live sequences are rows 0..S-1.
  GraphShape shape = graph_shape_of(b, lora.num_slots());
  const StepBatch padded = pad_to_graph_shape(b, shape);
  if (shape.lora_segments > 0) {
    // The skip decisions the forward pass will take (from the same slots it sees): part of the graph's key.
    auto slots = [&](const StepBatch::Field& f) { return std::vector<int32_t>(padded.at(f), padded.at(f) + f.size); };
    shape.lora_targets = dev_lora.weights().active_bits(slots(padded.lora_slot), slots(padded.logit_lora_slot));
  }
  StepTensors step;
  Tensor logits;
  auto stage = [&] {
    // Same scratch requests for one shape, in the same order: the upload first, then the logits [B, V].
    ctx.scratch.reset();
    Tensor data = ctx.scratch.tensor({static_cast<int64_t>(padded.data.size())}, DType::I32);
    const Tensor host =
        Tensor::view_of(const_cast<int32_t*>(padded.data.data()), data.shape(), DType::I32, nullptr);
    ops::copy_tensor(ctx, host, data);  // before any capture: copies are not recorded
    step = device_views(padded, data);
    logits = ctx.scratch.tensor({shape.rows, info.vocab_size});
  };
  auto forward = [&] {
    ForwardArgs args{ctx, step, pools.layers(), &dev_lora.weights(), options.communicator};
    model->forward(args, logits);
  };
  if (options.cuda_graphs == CudaGraphs::kPadOnly) {
    stage();
    forward();
  } else {
    graphs.run(ctx, shape, stage, forward);
  }
  return logits;
}

std::vector<std::optional<SampledToken>> Executor::Impl::draw_on_device(const std::vector<SeqWork>& works,
                                                                        const Tensor& logits,
                                                                        const std::vector<int64_t>& first) {
  // Each draw reads its work's last computed row; the parameters go up and the tokens come back in one copy each.
  std::vector<std::optional<SampledToken>> drawn(works.size());
  std::vector<int32_t> rows, ids;
  std::vector<ops::DeviceDraw> params;
  std::vector<size_t> of;
  for (size_t i = 0; i < works.size(); ++i) {
    if (!works[i].draw) continue;
    const SamplingParams& p = works[i].draw->params;
    rows.push_back(static_cast<int32_t>(first[i + 1] - 1));
    params.push_back({static_cast<float>(p.temperature), static_cast<int32_t>(std::clamp<int64_t>(p.top_k, 0, INT32_MAX)),
                      static_cast<float>(p.top_p), static_cast<float>(p.min_p), p.seed,
                      static_cast<uint64_t>(works[i].draw->position)});
    of.push_back(i);
  }
  if (rows.empty()) return drawn;
  bool with_logprobs = false;  // one pass over each drawn row, skipped when no caller reads the log-probability
  for (size_t i : of) with_logprobs = with_logprobs || works[i].draw->logprob;
  std::vector<float> logprobs;
  ops::sample_on_device(ctx, logits, rows, params, with_logprobs, ids, logprobs);
  std::vector<float> row;
  for (size_t j = 0; j < of.size(); ++j) {
    const TokenDraw& d = *works[of[j]].draw;
    if (d.top_logprobs > 0) {  // the top tokens come from the row on the host (rare: only requests that ask)
      row.resize(static_cast<size_t>(info.vocab_size));
      Tensor host = Tensor::view_of(row.data(), {1, info.vocab_size}, DType::F32, nullptr);
      ops::copy_tensor(ctx, logits.rows(rows[j], rows[j] + 1), host);
      drawn[of[j]] = describe_token(row.data(), info.vocab_size, ids[j], d.top_logprobs);
    } else {
      drawn[of[j]] = SampledToken{ids[j], static_cast<double>(logprobs[j]), {}};
    }
  }
  return drawn;
}

Executor::Executor(const std::string& model_dir, const ExecutorOptions& options)
    : Executor(load_model(model_dir), options) {}

Executor::Executor(std::unique_ptr<Model> model, const ExecutorOptions& options) {
  Model& m = *model;
  impl_ = std::make_unique<Impl>(std::move(model), m, options);
}

Executor::Executor(Model& model, const ExecutorOptions& options)
    : impl_(std::make_unique<Impl>(nullptr, model, options)) {}

Executor::~Executor() = default;

const ModelInfo& Executor::info() const { return impl_->info; }
const ExecutorOptions& Executor::options() const { return impl_->options; }
Model& Executor::model() { return *impl_->model; }

std::shared_ptr<const lora::NormalizedAdapter> Executor::load_adapter(const std::string& name,
                                                                     const std::string& dir) const {
  const Impl& m = *impl_;
  auto load = [&]() -> std::shared_ptr<const lora::NormalizedAdapter> {
    auto whole = lora::load_adapter(name, dir, m.targets, m.options.max_lora_rank);
    if (!m.options.shard_plan) return whole;
    return lora::shard_adapter(*whole, m.model->lora_targets(), *m.options.shard_plan, m.options.communicator->rank());
  };
  if (!m.leader) return load();
  auto lock = m.leader->hold();
  return m.leader->load_adapter(name, dir, load);
}

void Executor::lead(LeaderChannel* channel) { impl_->leader = channel; }

int64_t Executor::max_adapters_per_step() const { return impl_->lora.num_slots() - impl_->lora.num_pinned(); }
void Executor::pin_adapter(const std::shared_ptr<const lora::NormalizedAdapter>& adapter) {
  auto lock = leader_lock(impl_->leader);
  if (impl_->leader) impl_->leader->pin_adapter(*adapter);
  impl_->lora.pin(adapter);
}
void Executor::unpin_adapter(const lora::NormalizedAdapter& adapter) {
  auto lock = leader_lock(impl_->leader);
  if (impl_->leader) impl_->leader->unpin_adapter(adapter);
  impl_->lora.unpin(adapter);
}
void Executor::evict_adapter(const lora::NormalizedAdapter& adapter) {
  auto lock = leader_lock(impl_->leader);
  if (impl_->leader) impl_->leader->evict_adapter(adapter);
  impl_->lora.evict(adapter);
}
int64_t Executor::adapter_slot_loads() const { return impl_->lora.loads(); }
int32_t Executor::adapter_slot(const lora::NormalizedAdapter& adapter) const { return impl_->lora.slot_of(adapter); }
const LoraWeights& Executor::lora_weights() const { return impl_->lora.weights(); }

SeqId Executor::open_sequence() {
  Impl& m = *impl_;
  auto lock = leader_lock(m.leader);
  if (m.leader) m.leader->open_sequence(m.next_id);
  Impl::Sequence s;
  // Every sequence holds a slot (its recurrent states live there), so max_sequences bounds live sequences whatever
  // the model's layers are.
  s.state_slot = m.pools.slots().take(1, PoolExhausted::Kind::kStateSlots, "sequence slots").at(0);
  m.pools.clear_slot(s.state_slot);
  const SeqId id = m.next_id++;
  m.seqs.emplace(id, std::move(s));
  return id;
}

void Executor::release_sequence(SeqId seq) {
  Impl& m = *impl_;
  auto lock = leader_lock(m.leader);
  if (m.leader) m.leader->release_sequence(seq);
  Impl::Sequence& s = m.seq(seq);
  m.pools.pages().give_back(s.pages);
  if (s.state_slot >= 0) m.pools.slots().give_back({s.state_slot});
  m.seqs.erase(seq);
}

int64_t Executor::sequence_length(SeqId seq) const { return impl_->seq(seq).length; }
int64_t Executor::free_sequences() const { return impl_->pools.slots().available(); }
int64_t Executor::free_kv_pages() const { return impl_->pools.pages().available(); }
int64_t Executor::kv_pages_total() const { return impl_->pools.pages().total(); }
int64_t Executor::kv_pages_needed(SeqId seq, int64_t new_tokens) const {
  return impl_->pages_needed(impl_->seq(seq), new_tokens);
}

namespace {
// Logit rows the step computes for a work (the model writes them work after work).
int64_t rows_of(const SeqWork& w) {
  return w.output == RowOutput::kAll ? static_cast<int64_t>(w.tokens.size()) : w.output == RowOutput::kLast;
}
// Whether the work's rows come back to the host: all but the row of a kLast work that draws its token there.
bool returns_rows(const SeqWork& w) { return rows_of(w) > 0 && !(w.draw && w.output == RowOutput::kLast); }
}  // namespace

StepOutput Executor::execute(const std::vector<SeqWork>& works) {
  Impl& m = *impl_;
  auto lock = leader_lock(m.leader);
  if (m.leader) m.leader->execute(works);  // the other ranks run the same step (and fail the same way)
  m.validate(works);  // nothing changes when a work is wrong or the step does not fit
  const StepBatch batch = m.build(works);
  m.ctx.scratch.reset();
  const int64_t V = m.info.vocab_size;
  std::vector<int64_t> first(works.size() + 1, 0);  // the step's rows of work i: [first[i], first[i + 1])
  int64_t host_rows = 0;
  for (size_t i = 0; i < works.size(); ++i) {
    first[i + 1] = first[i] + rows_of(works[i]);
    host_rows += returns_rows(works[i]) ? rows_of(works[i]) : 0;
  }
  StepOutput out;
  // [R, V] float32 on the host, from blocks reused step to step (ops::host_output_allocator says why).
  out.logits = Tensor::empty({host_rows, V}, DType::F32, ops::host_output_allocator(m.ctx.device));
  Tensor all;  // every row the step computes: the host tensor itself when every row comes back, else beside it
  if (m.ctx.device == Device::CPU) {
    all = host_rows == batch.num_logit_rows ? out.logits : Tensor::empty({batch.num_logit_rows, V}, DType::F32);
    const StepTensors step = host_views(batch);
    ForwardArgs args{m.ctx, step, m.pools.layers(), &m.lora.weights(), m.options.communicator};
    m.model->forward(args, all);
    out.drawn.resize(works.size());
    for (size_t i = 0; i < works.size(); ++i)
      if (works[i].draw)
        out.drawn[i] = sample_token(all.f32() + (first[i + 1] - 1) * V, V, works[i].draw->params,
                                    works[i].draw->position, works[i].draw->top_logprobs);
  } else {
    m.sync_lora();
    all = m.graph_step(batch) ? m.run_cuda_padded(batch) : m.run_cuda(batch);
    out.drawn = m.draw_on_device(works, all, first);
  }
  // The returned rows, packed work after work (consecutive runs in one copy; the GPU copies wait for the step).
  int64_t r = 0;
  for (size_t i = 0; i < works.size();) {
    size_t j = i;
    while (j < works.size() && returns_rows(works[j]) == returns_rows(works[i])) ++j;
    const int64_t n = first[j] - first[i];
    if (returns_rows(works[i]) && n > 0 && all.raw() != out.logits.raw()) {
      Tensor dst = out.logits.rows(r, r + n);
      ops::copy_tensor(m.ctx, all.rows(first[i], first[j]), dst);
    }
    if (returns_rows(works[i])) r += n;
    i = j;
  }
  if (m.ctx.device != Device::CPU) ops::synchronize(m.ctx);  // a step that returns nothing still ends here
  r = 0;
  for (size_t i = 0; i < works.size(); ++i) {
    out.first_row.push_back(r);
    r += returns_rows(works[i]) ? rows_of(works[i]) : 0;
    m.seq(works[i].seq).length += static_cast<int64_t>(works[i].tokens.size());
  }
  return out;
}

CudaGraphStats Executor::cuda_graph_stats() const {
  const CudaGraphRunner::Stats& s = impl_->graphs.stats();
  return {s.warmups, s.captures, s.replays, s.eager, s.dropped, impl_->graphs.graphs()};
}

}  // namespace hylora
