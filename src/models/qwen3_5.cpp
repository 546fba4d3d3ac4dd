// Placeholder until the qwen3_5 model file lands.
#include "models/model_factories.h"

namespace hylora {
std::unique_ptr<Model> make_qwen3_5(const std::string& dir, const json&) {
  fail(dir, ": the qwen3_5 architecture is not implemented yet");
}
}  // namespace hylora
