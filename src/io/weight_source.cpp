#include "io/weight_source.h"

#include "io/random_weights.h"
#include "io/weight_loader.h"

namespace hylora {

std::unique_ptr<WeightSource> open_weights(const WeightOrigin& origin, const WeightNaming& naming) {
  std::unique_ptr<WeightSource> w;
  if (origin.random)
    w = std::make_unique<RandomWeights>(origin.seed, naming.one_plus_norm);
  else
    w = std::make_unique<WeightLoader>(Checkpoint::open_dir(origin.checkpoint_dir), naming.rename);
  return origin.wrap ? origin.wrap(std::move(w)) : std::move(w);
}

}  // namespace hylora
