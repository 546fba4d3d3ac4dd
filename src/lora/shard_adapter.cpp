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

// Absolute first row of slice k of a projection's whole weight.
int64_t whole_slice_offset(const dist::ProjectionPlan& p, int32_t k) {
  int64_t offset = 0;
  for (int32_t i = 0; i < k; ++i) offset += p.spec.slices.at(i).rows();
  return offset;
}

// d ← d − rows [row0, row0 + d.rows) of the rank's base weight `base` (same columns), for a replacement cut to
// this rank; `what` names it when the shapes disagree (a plan that drifted from the model).
void subtract_base(Tensor& d, const Tensor& base, int64_t row0, const std::string& what) {
  HYLORA_CHECK(d.ndim() == 2 && base.ndim() == 2 && d.dim(1) == base.dim(1) && row0 + d.dim(0) <= base.dim(0),
               "internal: replacement of ", what, " cut to ", shape_str(d.shape()), " does not fit the rank's base ",
               shape_str(base.shape()), " at row ", row0);
  Tensor b = base.rows(row0, row0 + d.dim(0)).clone();
  for (int64_t i = 0; i < d.numel(); ++i) d.f32()[i] -= b.f32()[i];
}

}  // namespace

TargetShapes whole_target_shapes(const LoraTargets& rank_targets, const dist::ShardPlan& plan) {
  TargetShapes s;
  auto slices_of = [](const dist::ProjectionSpec& spec) {
    std::vector<TargetShapes::Slice> out;
    int64_t offset = 0;
    for (const dist::SliceSpec& k : spec.slices) {
      out.push_back({offset, k.rows()});
      offset += k.rows();
    }
    return out;
  };
  for (const Linear* l : rank_targets.linears) {
    const dist::ProjectionSpec& spec = plan.at(l->name).spec;
    s.linears.push_back({spec.in_features(), spec.out_features(), 1, slices_of(spec)});
  }
  for (const ExpertLinear* e : rank_targets.experts) {
    const dist::ProjectionSpec& spec = plan.at(e->name).spec;
    s.experts.push_back({spec.in_features(), spec.out_features(), spec.num_experts, slices_of(spec)});
  }
  if (rank_targets.embedding) {
    const dist::ProjectionSpec& spec = plan.at(rank_targets.embedding->module).spec;
    s.vocab = spec.in_features(), s.hidden = spec.out_features();
  }
  return s;
}

std::shared_ptr<NormalizedAdapter> shard_adapter(const NormalizedAdapter& whole, const LoraTargets& rank_targets,
                                                 const dist::ShardPlan& plan, int rank) {
  auto out = std::make_shared<NormalizedAdapter>();
  out->name = whole.name;
  out->dir = whole.dir;
  out->warnings = whole.warnings;
  for (const NormalizedSlice& s : whole.experts) {  // expert LoRA follows its expert, then the column / row rule
    const ExpertLinear& lin = *rank_targets.experts.at(s.target);
    const dist::ProjectionPlan& p = plan.at(lin.name);
    const Range experts = p.ranks.at(rank).experts;
    NormalizedSlice c = s;
    c.A = dist::gather_blocks(s.A, {experts}, {}, kept_cols(p, rank));  // [E_local, r, in(_local)]
    c.B = dist::gather_blocks(s.B, {experts}, kept_rows(p, rank, s.slice, whole_slice_offset(p, s.slice)), {});
    out->experts.push_back(std::move(c));
  }
  for (const NormalizedSlice& s : whole.linears) {
    const Linear& lin = *rank_targets.linears.at(s.target);
    const dist::ProjectionPlan& p = plan.at(lin.name);
    NormalizedSlice c = s;
    c.A = dist::gather_blocks(s.A, {}, {}, kept_cols(p, rank));                                      // [r, in(_local)]
    c.B = dist::gather_blocks(s.B, {}, kept_rows(p, rank, s.slice, whole_slice_offset(p, s.slice)), {});  // [rows, r]
    out->linears.push_back(std::move(c));
  }
  for (const DenseDelta& d : whole.linear_deltas) {
    const Linear& lin = *rank_targets.linears.at(d.target);
    const dist::ProjectionPlan& p = plan.at(lin.name);
    DenseDelta c = d;
    c.delta = dist::gather_blocks(d.delta, {}, kept_rows(p, rank, d.slice, whole_slice_offset(p, d.slice)),
                                  kept_cols(p, rank));  // [out_size(_local), in(_local)]
    if (whole.deltas_are_replacements)
      subtract_base(c.delta, lin.host_weight(), lin.slices.at(d.slice).out_offset, lin.slices.at(d.slice).module);
    out->linear_deltas.push_back(std::move(c));
  }
  const Embedding* emb = rank_targets.embedding;
  const Range vocab = emb && plan.tp > 1 ? plan.at(emb->module).ranks.at(rank).in_parts.at(0).rows : Range{};
  for (const NormalizedSlice& s : whole.embedding) {
    NormalizedSlice c = s;
    if (plan.tp > 1) c.A = dist::gather_blocks(s.A, {}, {}, {vocab});  // A [r, V_local]; B [H, r] replicated
    out->embedding.push_back(std::move(c));
  }
  if (whole.embedding_delta.defined()) {
    out->embedding_delta =
        plan.tp > 1 ? dist::gather_blocks(whole.embedding_delta, {}, {vocab}, {}) : whole.embedding_delta.clone();
    if (whole.deltas_are_replacements) subtract_base(out->embedding_delta, emb->host_table(), 0, emb->module);
  }
  return out;
}

}  // namespace hylora::lora
