#pragma once
// RandomWeights: a WeightSource that answers every request with seeded random values of the expected shape, scaled
// like a trained model's so that activations stay finite through many layers (`hylora bench --random-weights`
// builds real model shapes without a checkpoint). Values depend only on (seed, canonical name, element index) — a
// counter-based generator — so they are the same for any thread count and any order of requests.
//
// What each kind of tensor gets (the kind is read off the canonical name; models.md describes the parameters):
//   *.A_log                log(U(1, 16))                    (Mamba2 / GDN decay rates A = exp(A_log) in [1, 16])
//   *.dt_bias              softplus⁻¹(dt), log dt ~ U(log 1e-3, log 1e-1)   (the Mamba2 initialisation)
//   *.D                    1                                 (Mamba2 skip)
//   *norm.weight           neutral + N(0, 0.02²): neutral 0 for (1 + w) norms, else 1
//   *conv1d.weight         N(0, 1/K) over a width-K kernel   (depthwise conv, fan-in K)
//   *.bias, *_bias         N(0, 0.02²)                       (projection, conv and router-correction biases)
//   everything else        N(0, 0.02²)                       (matrices, embeddings, experts; HF initializer_range)
#include <cstdint>
#include <functional>
#include <string>

#include "io/weight_source.h"

namespace hylora {

class RandomWeights : public WeightSource {
 public:
  // `one_plus_norm(name)`: true for the norms applied as (1 + w) (null: none).
  RandomWeights(uint64_t seed, std::function<bool(const std::string&)> one_plus_norm);

  bool has(const std::string&) const override { return true; }
  Tensor get(const std::string& name, const Shape& expected) override;
  Tensor get_optional(const std::string&, const Shape&) override { return Tensor(); }
  Tensor experts(const std::string& prefix, const std::string& fused, const std::vector<std::string>& parts,
                 const Shape& expected) override;
  void require_all_used(const std::string&) const override {}
  std::string where() const override;

  // Standard deviation of matrices and embeddings.
  static constexpr float kStd = 0.02f;

 private:
  uint64_t seed_;
  std::function<bool(const std::string&)> one_plus_norm_;
};

// N(0, std²) values of `shape`, from the same counter-based generator (stream = (seed, name)); for other random
// tensors that must be fast and reproducible (bench adapters).
Tensor random_normal(const Shape& shape, uint64_t seed, const std::string& name, float std);

}  // namespace hylora
