#include "io/random_weights.h"

#include <cmath>

namespace hylora {

namespace {

// SplitMix64 finaliser: a bijective mix, so hash(stream + i) is an independent-looking 64-bit value per counter i.
uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// FNV-1a of the name: each tensor draws from its own stream, whatever order the model asks in.
uint64_t name_hash(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// Uniform in (0, 1) from the top 53 bits (never 0, so log() is finite).
double unit(uint64_t bits) { return (static_cast<double>(bits >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// How one tensor's elements are drawn from a uniform pair (u1, u2).
enum class Kind { kNormal, kALog, kDtBias, kOne };

}  // namespace

RandomWeights::RandomWeights(uint64_t seed, std::function<bool(const std::string&)> one_plus_norm)
    : seed_(seed), one_plus_norm_(std::move(one_plus_norm)) {}

std::string RandomWeights::where() const { return "random weights (seed " + std::to_string(seed_) + ")"; }

Tensor RandomWeights::get(const std::string& name, const Shape& expected) {
  Kind kind = Kind::kNormal;
  float mean = 0.0f, std = kStd;
  if (ends_with(name, ".A_log")) {
    kind = Kind::kALog;
  } else if (ends_with(name, ".dt_bias")) {
    kind = Kind::kDtBias;
  } else if (ends_with(name, ".D")) {
    kind = Kind::kOne;
  } else if (ends_with(name, "norm.weight") || ends_with(name, "norm_f.weight")) {
    mean = one_plus_norm_ && one_plus_norm_(name) ? 0.0f : 1.0f;
  } else if (ends_with(name, "conv1d.weight")) {
    std = 1.0f / std::sqrt(static_cast<float>(expected.back()));  // [C, K]: fan-in K
  }
  Tensor t = Tensor::empty(expected);  // float32, `expected` shape
  float* out = t.f32();
  const int64_t n = t.numel();
  const uint64_t stream = mix(seed_ ^ mix(name_hash(name)));
  // Two uniforms per element (Box-Muller's cosine branch), counters 2i and 2i+1 of this tensor's stream.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const double u1 = unit(mix(stream + 2 * static_cast<uint64_t>(i)));
    const double u2 = unit(mix(stream + 2 * static_cast<uint64_t>(i) + 1));
    double v;
    switch (kind) {
      case Kind::kALog:
        v = std::log(1.0 + 15.0 * u1);
        break;
      case Kind::kDtBias: {
        const double dt = std::exp(std::log(1e-3) + u1 * (std::log(1e-1) - std::log(1e-3)));
        v = dt + std::log(-std::expm1(-dt));  // softplus⁻¹(dt)
        break;
      }
      case Kind::kOne:
        v = 1.0;
        break;
      default:
        v = mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
    }
    out[i] = static_cast<float>(v);
  }
  return t;
}

Tensor random_normal(const Shape& shape, uint64_t seed, const std::string& name, float std) {
  RandomWeights w(seed, nullptr);
  Tensor t = w.get(name + "/normal", shape);  // kNormal: the suffix matches no special kind
  const float k = std / RandomWeights::kStd;
  float* p = t.f32();
  const int64_t n = t.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] *= k;
  return t;
}

Tensor RandomWeights::experts(const std::string& prefix, const std::string& fused, const std::vector<std::string>&,
                              const Shape& expected) {
  HYLORA_CHECK(expected.size() == 3, "internal: experts() expects a 3-D shape");
  return get(prefix + "." + fused, expected);
}

}  // namespace hylora
