#include "dist/shard_weight_source.h"

#include <map>

#include "core/error.h"
#include "dist/shard_tensors.h"

namespace hylora::dist {

namespace {

// How one stored tensor is cut: its full shape [rows, cols] (cols 1 for a vector) and the kept ranges.
// An expert projection [E, out, in]: the rank's experts, and inside each its rows (column) or columns (row).
struct ExpertCut {
  int64_t experts = 0, out = 0, in = 0;
  Range keep_experts;
  std::vector<Range> keep_rows, keep_cols;
};

struct Cut {
  int64_t rows = 0, cols = 1;
  std::vector<Range> keep_rows, keep_cols;  // empty = all
  bool vocab = false;                       // the model asks for [V, H] and gets [V_local, H]
};

std::map<std::string, ExpertCut> expert_cuts_of(const ShardPlan& plan, int rank) {
  std::map<std::string, ExpertCut> cuts;
  for (const ProjectionPlan& p : plan.projections) {
    if (p.spec.kind != TargetKind::kExperts) continue;
    const RankShard& rs = p.ranks.at(rank);
    cuts[p.spec.name] = ExpertCut{p.spec.num_experts, p.spec.out_features(), p.spec.in_features(), rs.experts,
                                  out_rows(rs), in_cols(rs)};
  }
  return cuts;
}

std::map<std::string, Cut> cuts_of(const ShardPlan& plan, int rank) {
  std::map<std::string, Cut> cuts;
  for (const ProjectionPlan& p : plan.projections) {
    const RankShard& rs = p.ranks.at(rank);
    const ProjectionSpec& s = p.spec;
    switch (s.kind) {
      case TargetKind::kLinear: {
        int64_t offset = 0;
        for (size_t k = 0; k < s.slices.size(); ++k) {
          Cut c{s.slices[k].rows(), s.in_features(), {}, {}, s.name == "lm_head"};
          if (p.parallel == Parallel::kColumn) c.keep_rows = slice_rows(rs, k, offset);
          if (p.parallel == Parallel::kRow) c.keep_cols = in_cols(rs);
          cuts[s.slices[k].module + ".weight"] = c;
          Cut b{s.slices[k].rows(), 1, c.keep_rows, {}, false};
          cuts[s.slices[k].module + ".bias"] = b;
          offset += s.slices[k].rows();
        }
        break;
      }
      case TargetKind::kParam:
        cuts[s.name] = Cut{s.out_features(), s.inner, out_rows(rs), {}, false};
        break;
      case TargetKind::kEmbedding:
        cuts[s.name + ".weight"] = Cut{s.in_features(), s.out_features(), in_cols(rs), {}, true};
        break;
      case TargetKind::kExperts:
        break;  // expert_cuts_of
    }
  }
  return cuts;
}

std::vector<Span> spans(const std::vector<Range>& ranges) {
  std::vector<Span> out;
  for (const Range& r : ranges) out.push_back({r.begin, r.size});
  return out;
}

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

class ShardWeightSource : public WeightSource {
 public:
  ShardWeightSource(std::unique_ptr<WeightSource> inner, const ShardPlan& plan, int rank)
      : inner_(std::move(inner)),
        cuts_(cuts_of(plan, rank)),
        expert_cuts_(expert_cuts_of(plan, rank)),
        tp_(plan.tp),
        rank_(rank) {}

  bool has(const std::string& name) const override { return inner_->has(name); }
  Tensor get(const std::string& name, const Shape& expected) override {
    auto it = cuts_.find(name);
    if (it == cuts_.end()) return inner_->get(name, expected);  // replicated
    const Cut& c = it->second;
    // The stored tensor at its full shape, in the rank (1-D / 2-D) the model asked for; only the rank's rows and
    // columns are read from it (§6.1: a rank reads ~1/N of a sharded tensor).
    const Shape full = expected.size() == 1 ? Shape{c.rows * c.cols} : Shape{c.rows, c.cols};
    Tensor local = inner_->get_block(name, full, c.rows, c.cols, spans(c.keep_rows), spans(c.keep_cols));
    if (numel_of(expected) == local.numel()) return local.reshape(expected);
    if (c.vocab && expected == full) return local;  // [V_local, H]
    fail(inner_->where(), ": ", name, ": rank ", rank_, " of --tp ", tp_, " holds ", shape_str(local.shape()),
         " of ", shape_str(full), " but the model's per-rank config asks for ", shape_str(expected),
         " (a per-rank config that disagrees with the shard plan)");
  }
  Tensor get_optional(const std::string& name, const Shape& expected) override {
    return inner_->has(name) ? get(name, expected) : Tensor();
  }
  Tensor experts(const std::string& prefix, const std::string& fused, const std::vector<std::string>& parts,
                 const Shape& expected) override {
    // The model asks for [E, out_local, in_local] (E whole: its router scores every expert) and gets
    // [E_local, out_local, in_local]: its experts, each cut like a column / row projection.
    auto it = expert_cuts_.find(prefix + "." + fused);
    if (it == expert_cuts_.end()) return inner_->experts(prefix, fused, parts, expected);
    const ExpertCut& c = it->second;
    Tensor local = inner_->experts_block(prefix, fused, parts, {c.experts, c.out, c.in},
                                         Span{c.keep_experts.begin, c.keep_experts.size}, spans(c.keep_rows),
                                         spans(c.keep_cols));
    if (expected.size() != 3 || expected[1] != local.dim(1) || expected[2] != local.dim(2))
      fail(inner_->where(), ": ", prefix, ".", fused, ": rank ", rank_, " of --tp ", tp_, " holds ",
           shape_str(local.shape()), " but the model's per-rank config asks for ", shape_str(expected));
    return local;
  }
  int64_t bytes_read() const override { return inner_->bytes_read(); }
  void require_all_used(const std::string& arch) const override { inner_->require_all_used(arch); }
  std::string where() const override { return inner_->where(); }

 private:
  std::unique_ptr<WeightSource> inner_;
  std::map<std::string, Cut> cuts_;
  std::map<std::string, ExpertCut> expert_cuts_;
  int tp_, rank_;
};

}  // namespace

std::unique_ptr<WeightSource> shard_weights(std::unique_ptr<WeightSource> inner, const ShardPlan& plan, int rank) {
  return std::make_unique<ShardWeightSource>(std::move(inner), plan, rank);
}

}  // namespace hylora::dist
