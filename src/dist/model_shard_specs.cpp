// Dispatch by architecture, and the pieces every builder shares.
#include "dist/model_shard_specs.h"

#include <algorithm>

#include "core/error.h"

namespace hylora::dist {

ModelShardSpec model_shard_spec(const json& config, const std::string& where) {
  if (!config.is_object()) fail(where, ": expected a JSON object");
  std::string arch, type;
  if (config.contains("architectures") && config["architectures"].is_array() && !config["architectures"].empty() &&
      config["architectures"][0].is_string())
    arch = config["architectures"][0].get<std::string>();
  if (config.contains("model_type") && config["model_type"].is_string()) type = config["model_type"].get<std::string>();
  auto is = [&](std::initializer_list<const char*> archs, std::initializer_list<const char*> types) {
    if (!arch.empty()) return std::find(archs.begin(), archs.end(), arch) != archs.end();
    return std::find(types.begin(), types.end(), type) != types.end();
  };
  if (is({"Qwen3_5ForCausalLM", "Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForCausalLM",
          "Qwen3_5MoeForConditionalGeneration"},
         {"qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text"}))
    return qwen3_5_shard_spec(config, where);
  if (is({"Qwen3ForCausalLM", "Qwen3MoeForCausalLM"}, {"qwen3", "qwen3_moe"})) return qwen3_shard_spec(config, where);
  if (is({"NemotronHForCausalLM"}, {"nemotron_h"})) return nemotron_h_shard_spec(config, where);
  if (is({"DeepseekV3ForCausalLM"}, {"deepseek_v3", "kimi_k2"})) return deepseek_v3_shard_spec(config, where);
  fail(where, ": no shard plan for architecture \"", arch, "\" (model_type \"", type, "\")");
}

ModelShardSpec model_shard_spec_from_file(const std::string& path) {
  return model_shard_spec(read_json_file(path), path);
}

namespace spec_parts {

ProjectionSpec embedding(const std::string& module, int64_t V, int64_t H) {
  ProjectionSpec p;
  p.name = module;
  p.kind = TargetKind::kEmbedding;
  p.slices = {{module, {whole("hidden", H)}}};
  p.in_parts = {split_uneven("vocab", "vocab", "vocab_size", V, 1)};
  return p;
}

ProjectionSpec lm_head(int64_t V, int64_t H, const std::string& tied_to) {
  ProjectionSpec p = column("lm_head", split_uneven("vocab", "vocab", "vocab_size", V, 1), H);
  p.tied_to = tied_to;
  return p;
}

ProjectionSpec column(const std::string& module, PartSpec out, int64_t in) {
  ProjectionSpec p;
  p.name = module;
  p.slices = {{module, {std::move(out)}}};
  p.in_parts = {whole("in", in)};
  return p;
}

ProjectionSpec row(const std::string& module, int64_t out, PartSpec in) {
  ProjectionSpec p;
  p.name = module;
  p.slices = {{module, {whole("out", out)}}};
  p.in_parts = {std::move(in)};
  return p;
}

ProjectionSpec replicated(const std::string& module, int64_t out, int64_t in) {
  return column(module, whole("out", out), in);
}

void gated_mlp(ModelShardSpec& s, const std::string& prefix, int64_t I, int64_t H, const std::string& dimension,
               const std::string& local_field) {
  const std::string fam = prefix + "/intermediate";
  auto width = [&](const char* name) {
    PartSpec p = split(name, fam, dimension, I, 1);
    p.local_field = local_field;
    return p;
  };
  ProjectionSpec gu;
  gu.name = prefix + ".gate_up";
  gu.slices = {{prefix + ".gate_proj", {width("gate")}}, {prefix + ".up_proj", {width("up")}}};
  gu.in_parts = {whole("in", H)};
  s.projections.push_back(gu);
  s.projections.push_back(row(prefix + ".down_proj", H, width("intermediate")));
}

ProjectionSpec param(const std::string& name, std::vector<PartSpec> parts, int64_t inner) {
  ProjectionSpec p;
  p.inner = inner;
  p.name = name;
  p.kind = TargetKind::kParam;
  p.slices = {{"", std::move(parts)}};
  return p;
}

}  // namespace spec_parts
}  // namespace hylora::dist
