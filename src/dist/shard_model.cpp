#include "dist/shard_model.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "dist/shard_weight_source.h"

namespace hylora::dist {

namespace {

bool is_vocab(const ProjectionSpec& s) {
  for (const PartSpec& p : s.in_parts)
    if (p.family == "vocab") return true;
  for (const SliceSpec& sl : s.slices)
    for (const PartSpec& p : sl.parts)
      if (p.family == "vocab") return true;
  return false;
}

// True when `name` lies under the block of some expert projection ("<block>.experts.<proj>").
bool inside_moe_block(const ShardPlan& plan, const std::string& name) {
  for (const ProjectionPlan& p : plan.projections) {
    if (p.spec.kind != TargetKind::kExperts) continue;
    const size_t at = p.spec.name.find(".experts.");
    if (at != std::string::npos && name.rfind(p.spec.name.substr(0, at + 1), 0) == 0) return true;
  }
  return false;
}

}  // namespace

json local_config(const json& config, const ShardPlan& plan, int rank) {
  json out = config;
  // Qwen3.5 composite checkpoints keep the text model's fields under text_config.
  json& fields = out.contains("text_config") && out["text_config"].is_object() ? out["text_config"] : out;
  const json original = fields;
  std::set<std::string> split_fields;
  for (const ProjectionPlan& p : plan.projections) {
    const RankShard& rs = p.ranks.at(rank);
    auto set = [&](const PartSpec& part, const PartShard& shard) {
      if (part.policy == UnitPolicy::kWhole || part.dimension == "vocab_size") return;
      // A derived width (DeepSeek's shared experts: "moe_intermediate_size × n_shared_experts") has a field of its
      // own in the per-rank config (PartSpec::local_field), which the model reads in place of the product: under
      // --ep the routed experts are whole per rank while the shared experts are split over every rank, so the
      // product of the per-rank fields would be wrong. bind_shard checks the resulting shapes against the plan.
      if (!part.local_field.empty()) {
        fields[part.local_field] = shard.units.size;
        split_fields.insert(part.local_field);
        return;
      }
      if (!fields.contains(part.dimension) || !fields[part.dimension].is_number_integer())
        fail(plan.spec.where, ": the shard plan splits ", part.dimension, " (", p.spec.name,
             ") but the config has no integer field of that name");
      fields[part.dimension] = shard.units.size;
      split_fields.insert(part.dimension);
    };
    for (size_t s = 0; s < p.spec.slices.size(); ++s)
      for (size_t k = 0; k < p.spec.slices[s].parts.size(); ++k) set(p.spec.slices[s].parts[k], rs.slices[s][k]);
    for (size_t k = 0; k < p.spec.in_parts.size(); ++k) set(p.spec.in_parts[k], rs.in_parts[k]);
  }
  // A field no projection is cut by but that the config requires equal to a split one: MLA (DeepSeek-V3) states
  // num_key_value_heads = num_attention_heads (one key/value per query head after the latent expansion).
  const char* kv = "num_key_value_heads";
  const char* heads = "num_attention_heads";
  if (!split_fields.count(kv) && split_fields.count(heads) && original.contains(kv) && original.contains(heads) &&
      original[kv] == original[heads])
    fields[kv] = fields[heads];
  return out;
}

void bind_shard(Model& m, const ShardPlan& plan, int rank) {
  const LoraTargets& t = m.lora_targets();
  for (Linear* l : t.linears) {
    const ProjectionPlan& p = plan.at(l->name);
    const RankShard& rs = p.ranks.at(rank);
    HYLORA_CHECK(l->out_features() == rs.out_local() && l->in_features() == rs.in_local() &&
                     l->slices.size() == p.spec.slices.size(),
                 l->name, ": rank ", rank, " of --tp ", plan.tp, " holds [", l->out_features(), ", ",
                 l->in_features(), "] with ", l->slices.size(), " slices, the plan says [", rs.out_local(), ", ",
                 rs.in_local(), "] with ", p.spec.slices.size());
    int64_t off = 0;  // the local output is every slice's local rows, in slice order
    for (size_t k = 0; k < l->slices.size(); ++k) {
      l->slices[k].out_offset = off;
      l->slices[k].out_size = rs.slice_local_rows(k);
      off += l->slices[k].out_size;
    }
    // A row-parallel projection inside an MoE block (the shared expert's down_proj) stays a partial sum: the block's
    // one all-reduce (tp_reduce_moe_block) adds it with the experts' contributions. Its bias, if any, is added by
    // rank 0 only (zeroed on the others), so that the sum holds it once.
    if (p.parallel == Parallel::kRow && inside_moe_block(plan, l->name)) {
      l->tp = TpRole::kLocal;
      if (l->bias.defined() && rank != 0) l->bias = Tensor::zeros(l->bias.shape());
      continue;
    }
    l->tp = p.parallel == Parallel::kRow                           ? TpRole::kRowReduce
            : p.parallel == Parallel::kColumn && is_vocab(p.spec) ? TpRole::kGatherColumns
                                                                   : TpRole::kLocal;
    l->gather_widths.clear();
    if (l->tp == TpRole::kGatherColumns) {  // a vocabulary that does not divide: shards of unequal widths
      for (const RankShard& other : p.ranks) l->gather_widths.push_back(other.out_local());
      if (std::all_of(l->gather_widths.begin(), l->gather_widths.end(),
                      [&](int64_t w) { return w == l->gather_widths[0]; }))
        l->gather_widths.clear();
    }
  }
  if (Embedding* e = t.embedding) {
    const ProjectionPlan& p = plan.at(e->module);
    const Range v = p.ranks.at(rank).in_parts.at(0).rows;
    HYLORA_CHECK(e->table.dim(0) == v.size, e->module, ": rank ", rank, " holds ", e->table.dim(0),
                 " vocabulary rows, the plan says ", v.size);
    e->vocab_split = plan.tp > 1;
    e->vocab_begin = v.begin;
  }
  for (ExpertLinear* l : t.experts) {
    const ProjectionPlan& p = plan.at(l->name);
    const RankShard& rs = p.ranks.at(rank);
    HYLORA_CHECK(l->num_experts() == rs.experts.size && l->out_features() == rs.out_local() &&
                     l->in_features() == rs.in_local(),
                 l->name, ": rank ", rank, " holds [", l->num_experts(), ", ", l->out_features(), ", ",
                 l->in_features(), "], the plan says [", rs.experts.size, ", ", rs.out_local(), ", ", rs.in_local(),
                 "]");
    int64_t off = 0;
    for (size_t k = 0; k < l->slices.size(); ++k) {
      l->slices[k].out_offset = off;
      l->slices[k].out_size = rs.slice_local_rows(k);
      off += l->slices[k].out_size;
    }
    l->ep_split = rs.experts.size != p.spec.num_experts;
    l->expert_begin = rs.experts.begin;
  }
}

std::unique_ptr<Model> load_model_shard(const std::string& dir, const ShardPlan& plan, int rank) {
  const std::string path = dir + "/config.json";
  WeightOrigin origin = WeightOrigin::checkpoint(dir);
  origin.wrap = [&plan, rank](std::unique_ptr<WeightSource> w) { return shard_weights(std::move(w), plan, rank); };
  std::unique_ptr<Model> m = make_model(local_config(read_json_file(path), plan, rank), path, origin);
  bind_shard(*m, plan, rank);
  return m;
}

}  // namespace hylora::dist
