#include "engine/executor.h"

#include <algorithm>
#include <map>
#include <set>

#include "engine/forward_batch.h"
#include "lora/adapter_loader.h"
#include "lora/lora_applier.h"
#include "lora/lora_batch.h"
#include "lora/lora_pool.h"
#include "models/model.h"

namespace hylora {

namespace {
constexpr int64_t kDefaultCpuKvTokens = 1 << 20;  // per attention layer; tiny models on the CPU reference
}

struct Executor::Impl {
  Impl(std::unique_ptr<Model> m, const ExecutorOptions& o)
      : options(o),
        model(std::move(m)),
        targets(*model),
        pool(model->lora_targets(), o.max_loras_per_batch, o.max_lora_rank) {
    HYLORA_CHECK(o.device == Device::CPU, "--device cuda: the CUDA backend is not available in this build yet");
    HYLORA_CHECK(o.dtype == DType::F32, "--dtype ", dtype_name(o.dtype),
                 ": the CPU reference backend computes in float32 only");
    HYLORA_CHECK(o.max_batch_tokens > 0, "max_batch_tokens must be positive, got ", o.max_batch_tokens);
    HYLORA_CHECK(o.max_sequences > 0, "max_sequences must be positive, got ", o.max_sequences);
    HYLORA_CHECK(o.page_size > 0, "page_size must be positive, got ", o.page_size);
    const int64_t kv_tokens = o.kv_cache_tokens > 0 ? o.kv_cache_tokens : kDefaultCpuKvTokens;
    pages_total = (kv_tokens + o.page_size - 1) / o.page_size;
    info.architecture = model->architecture();
    info.vocab_size = model->vocab_size();
    info.hidden_size = model->hidden_size();
    info.num_layers = model->num_layers();
    info.max_position_embeddings = model->max_position_embeddings();
  }

  struct Sequence {
    SequenceCache cache;
    int64_t pages = 0;
  };

  int64_t pages_for(int64_t tokens) const { return (tokens + options.page_size - 1) / options.page_size; }
  Sequence& seq(SeqId id) {
    auto it = seqs.find(id);
    HYLORA_CHECK(it != seqs.end(), "sequence ", id, " is not open");
    return it->second;
  }

  ExecutorOptions options;
  std::unique_ptr<Model> model;
  lora::TargetIndex targets;
  lora::LoraPool pool;
  ModelInfo info;
  std::map<SeqId, Sequence> seqs;
  SeqId next_id = 0;
  int64_t pages_total = 0;
  int64_t pages_used = 0;
};

Executor::Executor(const std::string& model_dir, const ExecutorOptions& options)
    : Executor(load_model(model_dir), options) {}

Executor::Executor(std::unique_ptr<Model> model, const ExecutorOptions& options)
    : impl_(std::make_unique<Impl>(std::move(model), options)) {}

Executor::~Executor() = default;

const ModelInfo& Executor::info() const { return impl_->info; }
const ExecutorOptions& Executor::options() const { return impl_->options; }
Model& Executor::model() { return *impl_->model; }

std::shared_ptr<const lora::NormalizedAdapter> Executor::load_adapter(const std::string& name,
                                                                     const std::string& dir) const {
  return lora::load_adapter(name, dir, impl_->targets, impl_->options.max_lora_rank);
}

int64_t Executor::max_adapters_per_step() const { return impl_->pool.num_slots() - impl_->pool.num_pinned(); }

void Executor::pin_adapter(const std::shared_ptr<const lora::NormalizedAdapter>& adapter) { impl_->pool.pin(adapter); }
void Executor::unpin_adapter(const lora::NormalizedAdapter& adapter) { impl_->pool.unpin(adapter.name); }
void Executor::evict_adapter(const lora::NormalizedAdapter& adapter) {
  if (impl_->pool.slot_of(adapter.name) >= 0 && impl_->pool.occupant(impl_->pool.slot_of(adapter.name)) == &adapter)
    impl_->pool.evict(adapter.name);
}
int64_t Executor::adapter_slot_loads() const { return impl_->pool.loads(); }

SeqId Executor::open_sequence() {
  if (static_cast<int64_t>(impl_->seqs.size()) >= impl_->options.max_sequences)
    throw PoolExhausted(PoolExhausted::Kind::kStateSlots,
                        "all " + std::to_string(impl_->options.max_sequences) + " sequence slots are in use");
  const SeqId id = impl_->next_id++;
  impl_->seqs[id].cache = impl_->model->new_cache();
  return id;
}

void Executor::release_sequence(SeqId seq) {
  auto& s = impl_->seq(seq);
  impl_->pages_used -= s.pages;
  impl_->seqs.erase(seq);
}

int64_t Executor::sequence_length(SeqId seq) const { return impl_->seq(seq).cache.length; }
int64_t Executor::free_sequences() const {
  return impl_->options.max_sequences - static_cast<int64_t>(impl_->seqs.size());
}
int64_t Executor::free_kv_pages() const { return impl_->pages_total - impl_->pages_used; }
int64_t Executor::kv_pages_total() const { return impl_->pages_total; }
int64_t Executor::kv_pages_needed(SeqId seq, int64_t new_tokens) const {
  const auto& s = impl_->seq(seq);
  return std::max<int64_t>(0, impl_->pages_for(s.cache.length + new_tokens) - s.pages);
}

StepOutput Executor::execute(const std::vector<SeqWork>& works) {
  Impl& m = *impl_;
  const int64_t vocab = m.info.vocab_size;
  // Validation first: nothing changes when a work is wrong.
  int64_t rows = 0, pages = 0;
  std::set<SeqId> seen;
  std::set<const lora::NormalizedAdapter*> adapters;
  for (const SeqWork& w : works) {
    Impl::Sequence& s = m.seq(w.seq);
    HYLORA_CHECK(seen.insert(w.seq).second, "sequence ", w.seq, " appears twice in one step");
    HYLORA_CHECK(!w.tokens.empty(), "sequence ", w.seq, ": a step must append at least one token");
    for (int32_t t : w.tokens)
      HYLORA_CHECK(t >= 0 && t < vocab, "token id ", t, " is outside the vocabulary [0, ", vocab, ")");
    const int64_t len = s.cache.length + static_cast<int64_t>(w.tokens.size());
    HYLORA_CHECK(m.info.max_position_embeddings == 0 || len <= m.info.max_position_embeddings, "sequence of ", len,
                 " tokens is longer than the model's max_position_embeddings (", m.info.max_position_embeddings, ")");
    rows += static_cast<int64_t>(w.tokens.size());
    pages += kv_pages_needed(w.seq, static_cast<int64_t>(w.tokens.size()));
    if (w.adapter) adapters.insert(w.adapter.get());
  }
  if (rows > m.options.max_batch_tokens)
    throw PoolExhausted(PoolExhausted::Kind::kBatchTokens, "a step of " + std::to_string(rows) +
                                                               " tokens exceeds max_batch_tokens " +
                                                               std::to_string(m.options.max_batch_tokens));
  if (pages > free_kv_pages())
    throw PoolExhausted(PoolExhausted::Kind::kKvPages, "the step needs " + std::to_string(pages) +
                                                           " KV pages, " + std::to_string(free_kv_pages()) + " are free");
  if (static_cast<int64_t>(adapters.size()) > max_adapters_per_step())
    throw PoolExhausted(PoolExhausted::Kind::kAdapterSlots,
                        "the step uses " + std::to_string(adapters.size()) + " adapters, " +
                            std::to_string(max_adapters_per_step()) + " slots are available");

  ForwardBatch batch;
  std::vector<int32_t> row_slot;
  std::set<int32_t> in_use;
  for (const SeqWork& w : works) {
    Impl::Sequence& s = m.seq(w.seq);
    SeqSpan span;
    span.row_begin = batch.num_tokens();
    span.n_tokens = static_cast<int64_t>(w.tokens.size());
    span.past_len = s.cache.length;
    span.cache = &s.cache;
    int32_t slot = -1;
    if (w.adapter) {
      slot = m.pool.acquire(w.adapter, in_use);
      in_use.insert(slot);
    }
    for (int64_t j = 0; j < span.n_tokens; ++j) {
      batch.tokens.push_back(w.tokens[j]);
      batch.positions.push_back(span.past_len + j);
      row_slot.push_back(slot);
    }
    batch.seqs.push_back(span);
  }
  std::unique_ptr<lora::MultiLoraApplier> applier;
  if (!in_use.empty()) applier = std::make_unique<lora::MultiLoraApplier>(m.pool, lora::make_lora_batch(row_slot));
  batch.lora = applier.get();
  Tensor logits = m.model->forward(batch);  // [N, V]

  StepOutput out;
  int64_t wanted = 0;
  for (const SeqWork& w : works)
    wanted += w.output == RowOutput::kAll ? static_cast<int64_t>(w.tokens.size()) : w.output == RowOutput::kLast;
  out.logits = Tensor::empty({wanted, vocab});
  int64_t r = 0;
  for (size_t i = 0; i < works.size(); ++i) {
    const SeqWork& w = works[i];
    const SeqSpan& span = batch.seqs[i];
    out.first_row.push_back(r);
    int64_t from = span.row_begin, n = 0;
    if (w.output == RowOutput::kAll) n = span.n_tokens;
    if (w.output == RowOutput::kLast) from += span.n_tokens - 1, n = 1;
    std::copy_n(logits.f32() + from * vocab, n * vocab, out.logits.f32() + r * vocab);
    r += n;
    Impl::Sequence& s = m.seq(w.seq);
    const int64_t need = kv_pages_needed(w.seq, span.n_tokens);
    s.pages += need;
    m.pages_used += need;
    s.cache.length += span.n_tokens;
  }
  return out;
}

}  // namespace hylora
