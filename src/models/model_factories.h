#pragma once
// One factory per model file; registry.cpp maps architecture names onto them.
#include <memory>
#include <string>

#include "io/config.h"
#include "models/model.h"

namespace hylora {
std::unique_ptr<Model> make_qwen3_5(const std::string& dir, const json& config);      // models/qwen3_5.cpp
std::unique_ptr<Model> make_qwen3(const std::string& dir, const json& config);        // models/qwen3_5.cpp
std::unique_ptr<Model> make_nemotron_h(const std::string& dir, const json& config);   // models/nemotron_h.cpp
std::unique_ptr<Model> make_deepseek_v3(const std::string& dir, const json& config);  // models/deepseek_v3.cpp
}  // namespace hylora
