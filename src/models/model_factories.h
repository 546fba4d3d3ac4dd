#pragma once
// One factory per model file; registry.cpp maps architecture names onto them. A factory parses `config` (messages
// name `config_path`) and asks `origin` for the weights the config describes: a checkpoint, or random weights.
#include <memory>
#include <string>

#include "io/config.h"
#include "io/weight_source.h"
#include "models/model.h"

namespace hylora {
std::unique_ptr<Model> make_qwen3_5(const WeightOrigin& origin, const json& config,
                                    const std::string& config_path);  // models/qwen3_5.cpp
std::unique_ptr<Model> make_qwen3(const WeightOrigin& origin, const json& config,
                                  const std::string& config_path);  // models/qwen3_5.cpp
std::unique_ptr<Model> make_nemotron_h(const WeightOrigin& origin, const json& config,
                                       const std::string& config_path);  // models/nemotron_h.cpp
std::unique_ptr<Model> make_deepseek_v3(const WeightOrigin& origin, const json& config,
                                        const std::string& config_path);  // models/deepseek_v3.cpp
}  // namespace hylora
