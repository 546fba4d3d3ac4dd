#pragma once
// The shard specs of each architecture, from config.json alone (docs/multi_gpu.md §2 gives the rules): the same
// projections, names, slices and shapes the model files in src/models/ declare, plus the per-channel parameters that
// follow them (conv channels, per-head vectors), and the unit relations (query → KV head, GDN value → key head,
// Mamba2 head → group).
#include <string>

#include "dist/shard_spec.h"
#include "io/config.h"

namespace hylora::dist {

// Picks the architecture as models/registry.cpp does (architectures[0], else model_type) and builds its spec.
// `where` names the config in messages.
ModelShardSpec model_shard_spec(const json& config, const std::string& where);
// Reads <path> (a config.json) and calls model_shard_spec.
ModelShardSpec model_shard_spec_from_file(const std::string& path);

// One builder per model file.
ModelShardSpec qwen3_5_shard_spec(const json& config, const std::string& where);  // also Qwen3 / Qwen3-MoE
ModelShardSpec qwen3_shard_spec(const json& config, const std::string& where);
ModelShardSpec nemotron_h_shard_spec(const json& config, const std::string& where);
ModelShardSpec deepseek_v3_shard_spec(const json& config, const std::string& where);

// Pieces shared by the builders.
namespace spec_parts {
// The embedding [V, H] by vocabulary, and lm_head [V, H] column-parallel by vocabulary (the same ranges: a tied
// head shares the table's shard).
ProjectionSpec embedding(const std::string& module, int64_t V, int64_t H);
ProjectionSpec lm_head(int64_t V, int64_t H, const std::string& tied_to = "");
// A projection with one slice named after its PEFT module.
ProjectionSpec column(const std::string& module, PartSpec out, int64_t in);
ProjectionSpec row(const std::string& module, int64_t out, PartSpec in);
ProjectionSpec replicated(const std::string& module, int64_t out, int64_t in);
// A gated MLP `prefix`.gate_up [gate_proj | up_proj] (column) + `prefix`.down_proj (row), width I counted by
// `dimension`; `local_field` as PartSpec::local_field (a derived dimension's per-rank field).
void gated_mlp(ModelShardSpec& s, const std::string& prefix, int64_t I, int64_t H, const std::string& dimension,
               const std::string& local_field = "");
// A per-channel parameter [rows, inner] (inner 1: a vector) whose dim 0 is `parts`.
ProjectionSpec param(const std::string& name, std::vector<PartSpec> parts, int64_t inner = 1);
}  // namespace spec_parts

}  // namespace hylora::dist
