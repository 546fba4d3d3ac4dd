#include "dist/plan_check.h"

#include <algorithm>
#include <functional>
#include <map>

#include "core/error.h"

namespace hylora::dist {

namespace {

// The ranks that split a projection's parts among themselves: all tp ranks, or the moe_tp ranks of one ep group.
std::vector<std::vector<int>> split_groups(const ShardPlan& plan, const ProjectionPlan& p) {
  std::vector<std::vector<int>> groups;
  const int d = static_cast<int>(p.divisor);
  for (int g = 0; g < plan.tp / d; ++g) {
    groups.emplace_back();
    for (int i = 0; i < d; ++i) groups.back().push_back(g * d + i);
  }
  return groups;
}

void check_part(const ProjectionPlan& p, const PartSpec& spec, int64_t offset, const std::vector<int>& ranks,
                const std::function<const PartShard&(int)>& shard_of, const std::string& what) {
  const int64_t d = static_cast<int64_t>(ranks.size());
  std::vector<int64_t> held(spec.units, 0);
  for (int r : ranks) {
    const PartShard& s = shard_of(r);
    if (s.units.begin < 0 || s.units.size < 1 || s.units.end() > spec.units)
      fail(p.spec.name, " ", what, ": rank ", r, " holds units [", s.units.begin, ", ", s.units.end(), ") of ",
           spec.units);
    if (s.rows.begin != offset + s.units.begin * spec.unit_size || s.rows.size != s.units.size * spec.unit_size)
      fail(p.spec.name, " ", what, ": rank ", r, " rows [", s.rows.begin, ", ", s.rows.end(),
           ") are not its units cut at the part's own offset ", offset, " (expected [",
           offset + s.units.begin * spec.unit_size, ", ", offset + s.units.end() * spec.unit_size, "))");
    for (int64_t u = s.units.begin; u < s.units.end(); ++u) ++held[u];
  }
  int64_t expect = 1;  // how many ranks of the group hold each unit
  if (spec.policy == UnitPolicy::kWhole || d == 1)
    expect = d;
  else if (spec.policy == UnitPolicy::kSplitOrReplicate && spec.units % d != 0)
    expect = d / spec.units;  // replicated units (split_or_replicate with fewer units than ranks)
  for (int64_t u = 0; u < spec.units; ++u)
    if (held[u] != expect)
      fail(p.spec.name, " ", what, ": unit ", u, " of ", spec.units, " is held by ", held[u], " ranks, expected ",
           expect);
  if (expect == 1)
    for (int64_t j = 0; j < d; ++j) {  // j: the rank's index among the ranks that split the part
      const int r = ranks[static_cast<size_t>(j)];
      const int64_t want = spec.policy == UnitPolicy::kSplitUneven ? uneven_units(spec.units, d, j).size
                                                                   : spec.units / d;
      if (shard_of(r).units.size != want)
        fail(p.spec.name, " ", what, ": rank ", r, " holds ", shard_of(r).units.size, " units, expected ", want);
    }
}

}  // namespace

void check_partition(const ShardPlan& plan) {
  // family -> per rank unit range, and the family's size
  std::map<std::string, std::vector<Range>> family_units;
  std::map<std::string, int64_t> family_size;
  for (const ProjectionPlan& p : plan.projections) {
    if (static_cast<int>(p.ranks.size()) != plan.tp) fail(p.spec.name, ": ", p.ranks.size(), " ranks, expected ", plan.tp);
    auto note_family = [&](const PartSpec& spec, int r, Range u) {
      if (spec.family.empty()) return;
      auto [it, fresh] = family_size.emplace(spec.family, spec.units);
      if (!fresh && it->second != spec.units)
        fail(p.spec.name, " part ", spec.name, ": family ", spec.family, " has ", spec.units, " units here, ",
             it->second, " elsewhere");
      auto& per_rank = family_units[spec.family];
      if (per_rank.empty()) per_rank.assign(plan.tp, Range{-1, 0});
      if (per_rank[r].begin < 0)
        per_rank[r] = u;
      else if (!(per_rank[r] == u))
        fail(p.spec.name, " part ", spec.name, ": rank ", r, " holds units [", u.begin, ", ", u.end(), ") of ",
             spec.family, " but [", per_rank[r].begin, ", ", per_rank[r].end(), ") in another part");
    };
    for (const std::vector<int>& group : split_groups(plan, p)) {
      int64_t offset = 0;
      for (size_t s = 0; s < p.spec.slices.size(); ++s) {
        const SliceSpec& ss = p.spec.slices[s];
        for (size_t k = 0; k < ss.parts.size(); ++k) {
          const std::string what = "slice " + ss.module + " part " + ss.parts[k].name;
          check_part(p, ss.parts[k], offset, group, [&](int r) -> const PartShard& { return p.ranks[r].slices.at(s).at(k); },
                     what);
          for (int r : group) note_family(ss.parts[k], r, p.ranks[r].slices[s][k].units);
          offset += ss.parts[k].rows();
        }
      }
      int64_t in_offset = 0;
      for (size_t k = 0; k < p.spec.in_parts.size(); ++k) {
        check_part(p, p.spec.in_parts[k], in_offset, group,
                   [&](int r) -> const PartShard& { return p.ranks[r].in_parts.at(k); },
                   "input part " + p.spec.in_parts[k].name);
        for (int r : group) note_family(p.spec.in_parts[k], r, p.ranks[r].in_parts[k].units);
        in_offset += p.spec.in_parts[k].rows();
      }
    }
    if (p.spec.kind == TargetKind::kExperts) {
      // The ep groups' expert ranges partition [0, E); the ranks of one group hold the same experts.
      std::vector<int64_t> held(p.spec.num_experts, 0);
      for (const std::vector<int>& group : split_groups(plan, p)) {
        const Range e = p.ranks[group[0]].experts;
        for (int r : group)
          if (!(p.ranks[r].experts == e)) fail(p.spec.name, ": ranks ", group[0], " and ", r, " of one ep group hold different experts");
        if (e.begin < 0 || e.end() > p.spec.num_experts) fail(p.spec.name, ": experts out of range on rank ", group[0]);
        for (int64_t x = e.begin; x < e.end(); ++x) ++held[x];
      }
      for (int64_t x = 0; x < p.spec.num_experts; ++x)
        if (held[x] != 1) fail(p.spec.name, ": expert ", x, " is held by ", held[x], " ep groups, expected 1");
    }
  }
  for (const UnitRelation& rel : plan.spec.relations) {
    auto c = family_units.find(rel.child), q = family_units.find(rel.parent);
    if (c == family_units.end() || q == family_units.end())
      fail("unit relation ", rel.child, " -> ", rel.parent, ": a family has no parts");
    for (int r = 0; r < plan.tp; ++r) {
      const Range need{c->second[r].begin / rel.ratio, (c->second[r].end() - 1) / rel.ratio + 1 - c->second[r].begin / rel.ratio};
      const Range have = q->second[r];
      if (need.begin < have.begin || need.end() > have.end())
        fail(rel.child, " on rank ", r, " holds units [", c->second[r].begin, ", ", c->second[r].end(), ") which read ",
             rel.parent, " [", need.begin, ", ", need.end(), "), but the rank holds [", have.begin, ", ", have.end(), ")");
    }
  }
}

namespace {

void check_slices(const ProjectionPlan& p, const std::vector<LoraSlice>& slices, int64_t out, int64_t in) {
  const ProjectionSpec& s = p.spec;
  if (s.out_features() != out || s.in_features() != in)
    fail(s.name, ": the model declares [", out, ", ", in, "], the shard spec [", s.out_features(), ", ",
         s.in_features(), "]");
  if (slices.size() != s.slices.size())
    fail(s.name, ": the model declares ", slices.size(), " LoRA slices, the shard spec ", s.slices.size());
  int64_t offset = 0;
  for (size_t k = 0; k < slices.size(); ++k) {
    const LoraSlice& m = slices[k];
    if (m.module != s.slices[k].module || m.out_offset != offset || m.out_size != s.slices[k].rows())
      fail(s.name, ": slice ", k, " is ", m.module, " rows [", m.out_offset, ", ", m.out_offset + m.out_size,
           ") in the model, ", s.slices[k].module, " rows [", offset, ", ", offset + s.slices[k].rows(),
           ") in the shard spec");
    offset += m.out_size;
  }
}

}  // namespace

void check_against_model(const ShardPlan& plan, const LoraTargets& targets) {
  size_t matched = 0;
  auto find = [&](const std::string& name, TargetKind kind) -> const ProjectionPlan& {
    const ProjectionPlan& p = plan.at(name);
    if (p.spec.kind != kind) fail(name, ": the shard spec gives it a different kind of target than the model");
    ++matched;
    return p;
  };
  for (const Linear* l : targets.linears)
    check_slices(find(l->name, TargetKind::kLinear), l->slices, l->out_features(), l->in_features());
  for (const ExpertLinear* e : targets.experts) {
    const ProjectionPlan& p = find(e->name, TargetKind::kExperts);
    if (p.spec.num_experts != e->num_experts())
      fail(e->name, ": ", e->num_experts(), " experts in the model, ", p.spec.num_experts, " in the shard spec");
    check_slices(p, e->slices, e->out_features(), e->in_features());
  }
  if (targets.embedding) {
    const Embedding& emb = *targets.embedding;
    const ProjectionPlan& p = find(emb.module, TargetKind::kEmbedding);
    if (p.spec.in_features() != emb.table.dim(0) || p.spec.out_features() != emb.table.dim(1))
      fail(emb.module, ": table ", shape_str(emb.table.shape()), " in the model, [", p.spec.in_features(), ", ",
           p.spec.out_features(), "] in the shard spec");
  }
  size_t declared = 0;
  for (const ProjectionPlan& p : plan.projections)
    if (p.spec.kind != TargetKind::kParam) ++declared;
  if (declared != matched)
    fail(plan.spec.where, ": the shard spec has ", declared, " projections, the model declares ", matched);
}

}  // namespace hylora::dist
