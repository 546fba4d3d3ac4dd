// make_shard_plan: the per-rank ranges of every part, from the policies of shard_spec.h.
#include "dist/shard_plan.h"

#include <algorithm>

#include "core/error.h"

namespace hylora::dist {

namespace {

bool any_split(const std::vector<PartSpec>& parts) {
  for (const PartSpec& p : parts)
    if (p.policy != UnitPolicy::kWhole) return true;
  return false;
}

// The units of `p` that rank index `i` of `d` ranks holds. `what` names the projection, slice and part for errors.
Range units_of(const PartSpec& p, int64_t d, int64_t i, const std::string& where, const std::string& size_flag,
               const std::string& what) {
  if (p.policy == UnitPolicy::kWhole || d == 1) return {0, p.units};
  if (p.units % d == 0) return {i * (p.units / d), p.units / d};
  const std::string tail = " (" + what + ")" + (p.why.empty() ? "" : "; " + p.why);
  if (p.policy == UnitPolicy::kSplitUneven) {
    if (p.units < d) fail(where, ": ", size_flag, " ", d, ": ", p.dimension, " = ", p.units, " is smaller than ", d,
                          ", so some rank would hold none of it", tail);
    return uneven_units(p.units, d, i);
  }
  if (p.policy == UnitPolicy::kSplitOrReplicate) {
    if (d % p.units == 0) return {i / (d / p.units), 1};
    fail(where, ": ", size_flag, " ", d, ": ", p.dimension, " = ", p.units, " is neither divisible by ", d,
         " nor a divisor of it, so its units can be neither split nor replicated evenly", tail);
  }
  fail(where, ": ", size_flag, " ", d, ": ", p.dimension, " = ", p.units, " is not divisible by ", d, tail);
}

// Lays out `parts` from `offset` on, each part's units cut at the part's own offset.
std::vector<PartShard> place(const std::vector<PartSpec>& parts, int64_t offset, int64_t d, int64_t i,
                             const std::string& where, const std::string& size_flag, const std::string& what) {
  std::vector<PartShard> out;
  for (const PartSpec& p : parts) {
    PartShard s;
    s.units = units_of(p, d, i, where, size_flag, what + ", part " + p.name);
    s.rows = {offset + s.units.begin * p.unit_size, s.units.size * p.unit_size};
    out.push_back(s);
    offset += p.rows();
  }
  return out;
}

}  // namespace

Range uneven_units(int64_t units, int64_t d, int64_t i) {
  const int64_t base = units / d, extra = units % d;
  return {i * base + std::min(i, extra), base + (i < extra ? 1 : 0)};
}

const char* parallel_name(Parallel p) {
  switch (p) {
    case Parallel::kColumn: return "column";
    case Parallel::kRow: return "row";
    case Parallel::kReplicated: return "replicated";
  }
  return "?";
}

int64_t RankShard::slice_local_rows(size_t slice) const {
  int64_t n = 0;
  for (const PartShard& p : slices.at(slice)) n += p.rows.size;
  return n;
}

int64_t RankShard::out_local() const {
  int64_t n = 0;
  for (size_t s = 0; s < slices.size(); ++s) n += slice_local_rows(s);
  return n;
}

int64_t RankShard::in_local() const {
  int64_t n = 0;
  for (const PartShard& p : in_parts) n += p.rows.size;
  return n;
}

LoraShardRule lora_rule(Parallel p) {
  switch (p) {
    case Parallel::kColumn: return {false, true, false};
    case Parallel::kRow: return {true, false, true};
    case Parallel::kReplicated: return {false, false, false};
  }
  return {false, false, false};
}

const ProjectionPlan& ShardPlan::at(const std::string& name) const {
  for (const ProjectionPlan& p : projections)
    if (p.spec.name == name) return p;
  fail(spec.where, ": the shard plan has no projection named ", name);
}

int64_t rank_parameters(const ShardPlan& plan, int rank) {
  int64_t n = 0;
  for (const ProjectionPlan& p : plan.projections) {
    if (!p.spec.tied_to.empty()) continue;
    const RankShard& r = p.ranks.at(rank);
    switch (p.spec.kind) {
      case TargetKind::kLinear:
      case TargetKind::kEmbedding: n += r.out_local() * r.in_local(); break;
      case TargetKind::kExperts: n += r.experts.size * r.out_local() * r.in_local(); break;
      case TargetKind::kParam: n += r.out_local() * p.spec.inner; break;
    }
  }
  return n;
}

Range ShardPlan::units(const std::string& family, int rank) const {
  for (const ProjectionPlan& p : projections) {
    const RankShard& r = p.ranks.at(rank);
    for (size_t s = 0; s < p.spec.slices.size(); ++s)
      for (size_t k = 0; k < p.spec.slices[s].parts.size(); ++k)
        if (p.spec.slices[s].parts[k].family == family) return r.slices[s][k].units;
    for (size_t k = 0; k < p.spec.in_parts.size(); ++k)
      if (p.spec.in_parts[k].family == family) return r.in_parts[k].units;
  }
  fail(spec.where, ": the shard plan has no unit family ", family);
}

ShardPlan make_shard_plan(const ModelShardSpec& spec, int tp, int ep) {
  if (tp < 1) fail(spec.where, ": --tp must be at least 1, found ", tp);
  if (ep < 1 || tp % ep != 0)
    fail(spec.where, ": --ep ", ep, " must be at least 1 and divide --tp ", tp,
         " (each expert-parallel group is tp / ep ranks that split each of its experts)");
  ShardPlan plan;
  plan.tp = tp;
  plan.ep = ep;
  plan.spec = spec;
  const int64_t moe_tp = tp / ep;
  for (const ProjectionSpec& ps : spec.projections) {
    const bool out_split = any_split([&] {
      std::vector<PartSpec> all;
      for (const SliceSpec& s : ps.slices) all.insert(all.end(), s.parts.begin(), s.parts.end());
      return all;
    }());
    const bool in_split = any_split(ps.in_parts);
    if (out_split && in_split)
      fail(spec.where, ": projection ", ps.name, " splits both its rows and its columns (a spec error)");
    ProjectionPlan pp;
    pp.spec = ps;
    pp.parallel = out_split ? Parallel::kColumn : in_split ? Parallel::kRow : Parallel::kReplicated;
    const bool experts = ps.kind == TargetKind::kExperts;
    pp.divisor = experts ? moe_tp : tp;
    const std::string size_flag = experts && ep > 1 ? "--tp " + std::to_string(tp) + " / --ep " + std::to_string(ep) + " =" : "--tp";
    if (experts && ps.num_experts % ep != 0)
      fail(spec.where, ": --ep ", ep, ": ", ps.experts_dimension, " = ", ps.num_experts, " is not divisible by ", ep,
           " (", ps.name, ")");
    for (int r = 0; r < tp; ++r) {
      const int64_t i = experts ? r % moe_tp : r;  // index among the ranks that split the parts
      RankShard rs;
      int64_t offset = 0;
      for (const SliceSpec& s : ps.slices) {
        const std::string what = ps.name + (s.module.empty() ? "" : ", slice " + s.module);
        rs.slices.push_back(place(s.parts, offset, pp.divisor, i, spec.where, size_flag, what));
        offset += s.rows();
      }
      rs.in_parts = place(ps.in_parts, 0, pp.divisor, i, spec.where, size_flag, ps.name + ", input");
      if (experts) {
        const int64_t per = ps.num_experts / ep;
        rs.experts = {(r / moe_tp) * per, per};
      }
      pp.ranks.push_back(std::move(rs));
    }
    plan.projections.push_back(std::move(pp));
  }
  return plan;
}

}  // namespace hylora::dist
