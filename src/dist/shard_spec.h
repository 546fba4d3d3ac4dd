#pragma once
// What to shard, as shapes only (docs/multi_gpu.md §2): every projection of a model (and every per-channel parameter
// that must follow a projection's split, e.g. conv channels and per-head vectors), described by its output rows and
// input columns as blocks of equal *units* (heads, groups, channels). The per-architecture builders
// (dist/model_shard_specs.h) write these from config.json alone, so a plan can be computed for a model whose weights
// are not at hand; dist/plan_check.h checks them against a loaded Model's declared Linears.
#include <cstdint>
#include <string>
#include <vector>

namespace hylora::dist {

// How a block of units is distributed over the ranks that share it.
enum class UnitPolicy {
  kWhole,             // every rank holds all of it (latent projections, routers, the output side of a row split)
  kSplit,             // units / ranks contiguous units per rank; refused when it does not divide
  kSplitOrReplicate,  // as kSplit, or, with fewer units than ranks and ranks % units == 0, rank r holds unit
                      // r / (ranks / units) (GQA KV heads, GDN key heads: the unit its split partners need)
  kSplitUneven,       // contiguous, as even as it goes: units / ranks per rank and one more on the first
                      // units % ranks ranks (the vocabulary, multi_gpu.md §2.1: the lookup is summed and the logits
                      // gathered by range, so shards need not be equal); refused only with fewer units than ranks
};

// A contiguous block of a fused projection's rows (or input columns): `units` units of `unit_size` rows each.
struct PartSpec {
  std::string name;       // for messages, e.g. "q", "z", "B"
  std::string family;     // which units these are, e.g. "model.layers.3.mixer/heads": every part of one family
                          // must give a rank the same unit indices (checked by plan_check)
  std::string dimension;  // the config field that counts the units, e.g. "num_key_value_heads" (for errors)
  int64_t units = 1;
  int64_t unit_size = 1;
  UnitPolicy policy = UnitPolicy::kWhole;
  std::string why;        // an extra reason appended to a divisibility error, or empty
  // The per-rank config field that carries this part's local unit count (dist::local_config) when `dimension` is
  // derived rather than a config field (DeepSeek's shared experts: "moe_intermediate_size × n_shared_experts",
  // carried by "shared_experts_intermediate_size"). Empty: `dimension` itself, when it is a plain field.
  std::string local_field;
  int64_t rows() const { return units * unit_size; }
};

// One LoRA slice of a fused projection (lora.md §2) = one or more parts, in row order. A slice is cut at its own
// parts' offsets, never at an even split of the fused rows.
struct SliceSpec {
  std::string module;  // PEFT module path (Linear's LoraSlice::module); empty for a parameter without LoRA
  std::vector<PartSpec> parts;
  int64_t rows() const;
};

enum class TargetKind {
  kLinear,     // models::Linear, weight [out, in]
  kExperts,    // models::ExpertLinear, weight [E, out, in]
  kEmbedding,  // models::Embedding, table [V, H]: a linear over one-hot vocabulary inputs (in = V, out = H)
  kParam,      // a per-channel parameter whose dim 0 follows a projection's split (conv weights, A_log, ...)
};

struct ProjectionSpec {
  std::string name;     // Linear::name / ExpertLinear::name / Embedding::module / parameter name
  TargetKind kind = TargetKind::kLinear;
  std::vector<SliceSpec> slices;     // output rows (the table's H for an embedding; dim 0 of a parameter)
  std::vector<PartSpec> in_parts;    // input columns (vocabulary for an embedding; empty for a parameter)
  int64_t num_experts = 0;           // kExperts only
  std::string experts_dimension;     // the config field counting them (for errors)
  int64_t inner = 1;                 // kParam: elements per row (conv kernel K; 1 for vectors)
  std::string tied_to;               // lm_head tied to the embedding: no weight of its own (parameter counts)
  int64_t out_features() const;
  int64_t in_features() const;
};

// Unit u of family `child` reads unit u / ratio of family `parent` (query head → KV head, GDN value head → key
// head, Mamba2 head → B/C group): a rank must hold the parents of the children it holds.
struct UnitRelation {
  std::string child, parent;
  int64_t ratio = 1;
};

// Everything the plan is computed from: one model's specs.
struct ModelShardSpec {
  std::string architecture;  // e.g. "NemotronHForCausalLM"
  std::string where;         // config path, for messages
  std::vector<ProjectionSpec> projections;
  std::vector<UnitRelation> relations;
};

// Builders for the specs (each sets the policy; `family` and `dimension` as above).
PartSpec whole(std::string name, int64_t rows);
PartSpec split(std::string name, std::string family, std::string dimension, int64_t units, int64_t unit_size);
PartSpec split_or_replicate(std::string name, std::string family, std::string dimension, int64_t units,
                            int64_t unit_size);
PartSpec split_uneven(std::string name, std::string family, std::string dimension, int64_t units, int64_t unit_size);

}  // namespace hylora::dist
