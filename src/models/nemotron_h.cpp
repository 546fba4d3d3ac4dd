// Placeholder until the nemotron_h model file lands.
#include "models/model_factories.h"

namespace hylora {
std::unique_ptr<Model> make_nemotron_h(const std::string& dir, const json&) {
  fail(dir, ": the nemotron_h architecture is not implemented yet");
}
}  // namespace hylora
