#include "lora/shard_adapter.h"

#include "core/error.h"
#include "dist/shard_tensors.h"

namespace hylora::lora {

namespace {

using dist::Parallel;
using dist::Range;

// The rows of slice k kept on this rank (relative to the slice), or all when not column-parallel.
std::vector<Range> kept_rows(const dist::ProjectionPlan& p, int rank, int32_t k, int64_t slice_offset) {
  if (p.parallel != Parallel::kColumn) return {};
  return dist::slice_rows(p.ranks.at(rank), static_cast<size_t>(k), slice_offset);
}
std::vector<Range> kept_cols(const dist::ProjectionPlan& p, int rank) {
  if (p.parallel != Parallel::kRow) return {};
  return dist::in_cols(p.ranks.at(rank));
}

}  // namespace

std::shared_ptr<NormalizedAdapter> shard_adapter(const NormalizedAdapter& whole, const LoraTargets& whole_targets,
                                                 const LoraTargets& rank_targets, const dist::ShardPlan& plan,
                                                 int rank) {
  HYLORA_CHECK(whole_targets.linears.size() == rank_targets.linears.size(), "adapter \"", whole.name,
               "\": the rank's model declares ", rank_targets.linears.size(), " LoRA targets, the whole model ",
               whole_targets.linears.size());
  for (size_t i = 0; i < whole_targets.linears.size(); ++i)
    HYLORA_CHECK(whole_targets.linears[i]->name == rank_targets.linears[i]->name, "internal: LoRA target ", i, " is ",
                 whole_targets.linears[i]->name, " on the whole model, ", rank_targets.linears[i]->name,
                 " on rank ", rank);
  auto out = std::make_shared<NormalizedAdapter>();
  out->name = whole.name;
  out->dir = whole.dir;
  out->warnings = whole.warnings;
  for (const NormalizedSlice& s : whole.experts) {  // expert LoRA follows its expert, then the column / row rule
    const ExpertLinear& lin = *whole_targets.experts.at(s.target);
    const dist::ProjectionPlan& p = plan.at(lin.name);
    const Range experts = p.ranks.at(rank).experts;
    NormalizedSlice c = s;
    c.A = dist::gather_blocks(s.A, {experts}, {}, kept_cols(p, rank));  // [E_local, r, in(_local)]
    c.B = dist::gather_blocks(s.B, {experts}, kept_rows(p, rank, s.slice, lin.slices[s.slice].out_offset), {});
    out->experts.push_back(std::move(c));
  }
  for (const NormalizedSlice& s : whole.linears) {
    const Linear& lin = *whole_targets.linears.at(s.target);
    const dist::ProjectionPlan& p = plan.at(lin.name);
    NormalizedSlice c = s;
    c.A = dist::gather_blocks(s.A, {}, {}, kept_cols(p, rank));                                  // [r, in(_local)]
    c.B = dist::gather_blocks(s.B, {}, kept_rows(p, rank, s.slice, lin.slices[s.slice].out_offset), {});  // [rows, r]
    out->linears.push_back(std::move(c));
  }
  for (const DenseDelta& d : whole.linear_deltas) {
    const Linear& lin = *whole_targets.linears.at(d.target);
    const dist::ProjectionPlan& p = plan.at(lin.name);
    DenseDelta c = d;
    c.delta = dist::gather_blocks(d.delta, {}, kept_rows(p, rank, d.slice, lin.slices[d.slice].out_offset),
                                  kept_cols(p, rank));
    out->linear_deltas.push_back(std::move(c));
  }
  const Embedding* emb = whole_targets.embedding;
  const Range vocab = emb && plan.tp > 1 ? plan.at(emb->module).ranks.at(rank).in_parts.at(0).rows : Range{};
  for (const NormalizedSlice& s : whole.embedding) {
    NormalizedSlice c = s;
    if (plan.tp > 1) c.A = dist::gather_blocks(s.A, {}, {}, {vocab});  // A [r, V_local]; B [H, r] replicated
    out->embedding.push_back(std::move(c));
  }
  if (whole.embedding_delta.defined())
    out->embedding_delta =
        plan.tp > 1 ? dist::gather_blocks(whole.embedding_delta, {}, {vocab}, {}) : whole.embedding_delta;
  return out;
}

}  // namespace hylora::lora
