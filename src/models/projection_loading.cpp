#include "models/projection_loading.h"

#include <algorithm>

namespace hylora {

Linear load_fused(WeightSource& w, const std::string& name, const std::vector<FusedPart>& parts, int64_t in) {
  int64_t out = 0;
  bool any_bias = false;
  for (auto& p : parts) {
    out += p.rows;
    any_bias = any_bias || p.bias;
  }
  Linear l;
  l.name = name;
  l.weight = Tensor::empty({out, in});
  if (any_bias) l.bias = Tensor::zeros({out});
  int64_t off = 0;
  for (auto& p : parts) {
    Tensor t = w.get(p.module + ".weight", {p.rows, in});
    std::copy_n(t.f32(), t.numel(), l.weight.f32() + off * in);
    if (p.bias) {
      Tensor b = w.get(p.module + ".bias", {p.rows});
      std::copy_n(b.f32(), p.rows, l.bias.f32() + off);
    }
    l.slices.push_back({p.module, off, p.rows});
    off += p.rows;
  }
  return l;
}

Linear load_linear(WeightSource& w, const std::string& module, int64_t out, int64_t in, bool bias) {
  return load_fused(w, module, {{module, out, bias}}, in);
}

}  // namespace hylora
