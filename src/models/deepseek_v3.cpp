// Placeholder until the deepseek_v3 model file lands.
#include "models/model_factories.h"

namespace hylora {
std::unique_ptr<Model> make_deepseek_v3(const std::string& dir, const json&) {
  fail(dir, ": the deepseek_v3 architecture is not implemented yet");
}
}  // namespace hylora
