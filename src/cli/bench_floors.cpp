#include "cli/bench_floors.h"

#include <cmath>
#include <map>

#include "cli/bench_adapters.h"

namespace hylora::cli {

namespace {
const json& text_of(const json& c) {
  return c.contains("text_config") && c["text_config"].is_object() ? c["text_config"] : c;
}
int64_t field(const json& c, const char* key, int64_t fallback) {
  return c.contains(key) && c[key].is_number_integer() ? c[key].get<int64_t>() : fallback;
}
}  // namespace

CostModel::CostModel(Model& model, const json& config, double weight_dtype_bytes) : wb(weight_dtype_bytes) {
  const json& t = text_of(config);
  top_k_ = field(t, "num_experts_per_tok", 0);
  heads_ = field(t, "num_attention_heads", 0);
  mla_nope_ = field(t, "qk_nope_head_dim", 0);
  mla_rope_ = field(t, "qk_rope_head_dim", 0);
  mla_v_ = field(t, "v_head_dim", 0);
  mla_ckv_ = field(t, "kv_lora_rank", 0);
  hidden_ = static_cast<double>(model.hidden_size());
  vocab_ = static_cast<double>(model.vocab_size());
  specs_ = model.cache_specs();

  const LoraTargets& targets = model.lora_targets();
  const void* table = targets.embedding ? targets.embedding->table.raw() : nullptr;
  const void* head = nullptr;
  std::map<const void*, int64_t> expert_E;
  for (const Linear* l : targets.linears)
    if (l->name == "lm_head") head = l->weight.raw();
  for (const ExpertLinear* e : targets.experts) expert_E[e->weight.raw()] = e->num_experts();
  embedding_is_lm_head_ = table && table == head;
  std::map<const void*, bool> seen;  // tied weights share storage: count them once
  model.for_each_weight([&](Tensor& w) {
    if (!w.defined() || seen[w.raw()]) return;
    seen[w.raw()] = true;
    const double n = static_cast<double>(w.numel());
    total_weight_bytes += n * wb;
    if (w.raw() == head) {
      lm_head_numel_ = n;
    } else if (w.raw() == table) {
      // Not the head: the step reads only its tokens' rows (counted per step).
    } else if (expert_E.count(w.raw())) {
      experts_.push_back({n, expert_E[w.raw()]});
    } else if (w.ndim() >= 2) {
      dense_.push_back({n});
    } else {
      other_numel_ += n;
    }
  });
  for (const Linear* l : targets.linears) {
    if (!bench_adapts(*l)) continue;
    for (const LoraSlice& s : l->slices) lora_in_out_ += static_cast<double>(l->in_features() + s.out_size);
  }
}

double CostModel::experts_touched(int64_t rows) const {
  if (experts_.empty()) return 0;
  const double E = static_cast<double>(experts_.front().E), k = static_cast<double>(top_k_);
  if (rows <= 1) return std::min(E, k);
  return E * (1.0 - std::pow(1.0 - k / E, static_cast<double>(rows)));
}

StepCost CostModel::cost(const StepShape& s) const {
  StepCost c;
  const double T = static_cast<double>(s.seqs * s.new_tokens);  // rows of the step
  const double R = static_cast<double>(s.seqs);                  // logit rows (the last of each sequence)
  const double seqs = static_cast<double>(s.seqs);
  // Weights: dense once; experts: those touched; lm_head whole; embedding: its T rows unless it is the head.
  double dense = other_numel_;
  for (const Dense& d : dense_) dense += d.numel;
  c.weight_bytes = (dense + lm_head_numel_) * wb;
  if (!embedding_is_lm_head_) c.weight_bytes += std::min(T, vocab_) * hidden_ * wb;
  const double touched = experts_touched(s.seqs * s.new_tokens);
  for (const Experts& e : experts_) c.weight_bytes += e.numel * (touched / static_cast<double>(e.E)) * wb;
  // FLOP of the projections: 2 per multiply-add over the step's rows; experts over their routed rows (k per row).
  for (const Dense& d : dense_) c.base_flop += 2.0 * T * d.numel;
  c.base_flop += 2.0 * R * lm_head_numel_;
  for (const Experts& e : experts_)
    c.base_flop += 2.0 * T * static_cast<double>(top_k_) * e.numel / static_cast<double>(e.E);
  // Caches, per layer kind. Prefill attends causally over its own rows: half of new_tokens on average.
  const double ctx = static_cast<double>(s.context), n = static_cast<double>(s.new_tokens);
  const double attended = ctx + (n + 1.0) / 2.0;  // mean keys per new token
  for (const LayerCacheSpec& l : specs_) {
    switch (l.kind) {
      case LayerCacheSpec::Kind::kAttention: {
        const double row = static_cast<double>(l.kv_heads * (l.k_dim + l.v_dim));
        c.cache_bytes += seqs * (ctx + n) * row * wb;  // read the cached rows, write the new ones
        c.base_flop += 2.0 * T * static_cast<double>(heads_ * (l.k_dim + l.v_dim)) * attended;
        break;
      }
      case LayerCacheSpec::Kind::kLatent: {
        c.cache_bytes += seqs * (ctx + n) * static_cast<double>(l.latent_width) * wb;
        // Absorbed MLA (models.md §3.7): 2·nH·((Dn + Dv)·Ckv + (2·Ckv + Dr)·context) per new token.
        c.base_flop += 2.0 * T * static_cast<double>(heads_) *
                       (static_cast<double>((mla_nope_ + mla_v_) * mla_ckv_) +
                        static_cast<double>(2 * mla_ckv_ + mla_rope_) * attended);
        break;
      }
      case LayerCacheSpec::Kind::kRecurrent: {
        const double state = static_cast<double>(shape_numel(l.recurrent_state));
        const double conv = static_cast<double>(shape_numel(l.conv_state));
        c.cache_bytes += seqs * 2.0 * (state + conv) * 4.0;  // float32 states, read + written once per step
        c.base_flop += 2.0 * T * 2.0 * state;               // ~2 multiply-adds per state element per token
        break;
      }
      case LayerCacheSpec::Kind::kNone:
        break;
    }
  }
  // Activations leaving the chip: the residual stream in and out of every layer in prefill (decode keeps it
  // on chip), and the float32 logits the step writes (lm_head's output rows).
  if (s.new_tokens > 1) c.io_bytes += T * hidden_ * wb * 2.0 * static_cast<double>(specs_.size());
  c.io_bytes += R * vocab_ * 4.0;
  // LoRA: each adapter's A and B at its true rank, read once; shrink + expand over the rows that use an adapter.
  if (s.adapters > 0) {
    const double r = static_cast<double>(s.rank);
    c.lora_bytes = static_cast<double>(s.adapters) * lora_in_out_ * r * wb;
    c.lora_flop = 2.0 * T * lora_in_out_ * r;
  }
  return c;
}

}  // namespace hylora::cli
