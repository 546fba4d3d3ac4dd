#include "dist/shard_tensors.h"

#include <cstring>

#include "core/error.h"

namespace hylora::dist {

namespace {

int64_t total(const std::vector<Range>& rs) {
  int64_t n = 0;
  for (const Range& r : rs) n += r.size;
  return n;
}

}  // namespace

Tensor gather_blocks(const Tensor& t, const std::vector<Range>& groups, const std::vector<Range>& rows,
                     const std::vector<Range>& cols) {
  HYLORA_CHECK(t.ndim() == 2 || t.ndim() == 3, "gather_blocks: expected a 2-D or 3-D tensor, found ",
               shape_str(t.shape()));
  HYLORA_CHECK(t.contiguous() && t.dtype() == DType::F32, "gather_blocks: expected a contiguous float32 tensor");
  const bool three = t.ndim() == 3;
  const int64_t G = three ? t.dim(0) : 1, R = t.dim(-2), C = t.dim(-1);
  const std::vector<Range> g = groups.empty() ? std::vector<Range>{{0, G}} : groups;
  const std::vector<Range> r = rows.empty() ? std::vector<Range>{{0, R}} : rows;
  const std::vector<Range> c = cols.empty() ? std::vector<Range>{{0, C}} : cols;
  for (const auto* list : {&g, &r, &c})
    for (const Range& x : *list)
      HYLORA_CHECK(x.begin >= 0 && x.size >= 0, "gather_blocks: bad range");
  const int64_t nG = total(g), nR = total(r), nC = total(c);
  Tensor out = three ? Tensor::empty({nG, nR, nC}) : Tensor::empty({nR, nC});
  float* dst = out.f32();
  const float* src = t.f32();
  for (const Range& gr : g)
    for (int64_t gi = gr.begin; gi < gr.end(); ++gi) {
      HYLORA_CHECK(gi < G, "gather_blocks: group ", gi, " of ", G);
      for (const Range& rr : r)
        for (int64_t ri = rr.begin; ri < rr.end(); ++ri) {
          HYLORA_CHECK(ri < R, "gather_blocks: row ", ri, " of ", R);
          for (const Range& cr : c) {
            HYLORA_CHECK(cr.end() <= C, "gather_blocks: columns up to ", cr.end(), " of ", C);
            std::memcpy(dst, src + (gi * R + ri) * C + cr.begin, cr.size * sizeof(float));
            dst += cr.size;
          }
        }
    }
  return out;
}

std::vector<Range> out_rows(const RankShard& s) {
  std::vector<Range> out;
  for (const auto& slice : s.slices)
    for (const PartShard& p : slice) out.push_back(p.rows);
  return out;
}

std::vector<Range> in_cols(const RankShard& s) {
  std::vector<Range> out;
  for (const PartShard& p : s.in_parts) out.push_back(p.rows);
  return out;
}

std::vector<Range> slice_rows(const RankShard& s, size_t k, int64_t slice_offset) {
  std::vector<Range> out;
  for (const PartShard& p : s.slices.at(k)) out.push_back({p.rows.begin - slice_offset, p.rows.size});
  return out;
}

std::vector<const ops::LoraSliceBuffers*> LinearShard::lora_ptrs() const {
  std::vector<const ops::LoraSliceBuffers*> p;
  for (const auto& s : lora) p.push_back(&s);
  return p;
}

LinearShard shard_projection(const ProjectionPlan& plan, int rank, const Tensor& weight, const Tensor& bias,
                             const std::vector<ops::LoraSliceBuffers>& lora, int64_t slots) {
  const RankShard& rs = plan.ranks.at(rank);
  const bool experts = plan.spec.kind == TargetKind::kExperts;
  HYLORA_CHECK(plan.spec.kind == TargetKind::kLinear || experts, plan.spec.name, ": not a Linear or expert projection");
  LinearShard out;
  out.parallel = plan.parallel;
  out.experts = rs.experts;
  const std::vector<Range> rows = out_rows(rs), cols = in_cols(rs);
  const int64_t E = plan.spec.num_experts;
  out.weight = gather_blocks(weight, experts ? std::vector<Range>{rs.experts} : std::vector<Range>{}, rows, cols);
  if (bias.defined())
    out.bias = plan.parallel == Parallel::kColumn ? gather_blocks(bias.reshape({1, bias.dim(0)}), {}, {}, rows)
                                                        .reshape({rs.out_local()})
                                                  : bias.clone();
  // LoRA groups: slot (plain) or slot · E + expert; a rank keeps its experts' groups of every slot, in slot order.
  std::vector<Range> groups;
  if (experts) {
    HYLORA_CHECK(slots > 0, plan.spec.name, ": expert LoRA sharding needs the slot count");
    for (int64_t s = 0; s < slots; ++s) groups.push_back({s * E + rs.experts.begin, rs.experts.size});
  }
  HYLORA_CHECK(lora.empty() || lora.size() == plan.spec.slices.size(), plan.spec.name, ": ", lora.size(),
               " LoRA slices for ", plan.spec.slices.size(), " declared");
  const LoraShardRule rule = lora_rule(plan.parallel);
  int64_t offset = 0, local_offset = 0;
  for (size_t k = 0; k < lora.size(); ++k) {
    const ops::LoraSliceBuffers& whole = lora[k];
    ops::LoraSliceBuffers s;
    // A [G, max_r, in]: columns cut when row-parallel, else replicated.
    s.A = gather_blocks(whole.A, groups, {}, rule.a_sharded_by_input ? cols : std::vector<Range>{});
    // B [G, out_slice, max_r]: the slice's own rows when column-parallel, else replicated.
    s.B = gather_blocks(whole.B, groups, rule.b_sharded_by_slice_rows ? slice_rows(rs, k, offset) : std::vector<Range>{},
                        {});
    s.rank = Tensor::empty({s.A.dim(0)}, DType::I32);
    int64_t i = 0;
    for (const Range& g : groups.empty() ? std::vector<Range>{{0, whole.rank.dim(0)}} : groups)
      for (int64_t x = g.begin; x < g.end(); ++x) s.rank.i32()[i++] = whole.rank.i32()[x];
    s.out_size = s.B.dim(1);
    s.out_offset = plan.parallel == Parallel::kColumn ? local_offset : offset;
    out.lora.push_back(std::move(s));
    offset += plan.spec.slices[k].rows();
    local_offset += rs.slice_local_rows(k);
  }
  return out;
}

}  // namespace hylora::dist
