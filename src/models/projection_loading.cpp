#include "models/projection_loading.h"

#include <algorithm>

namespace hylora {

Linear load_fused(WeightSource& w, const std::string& name, const std::vector<FusedPart>& parts, int64_t in) {
  // Rows come from the tensors returned, not from `parts`: a rank's sharding source (dist/shard_weight_source.h)
  // answers a vocabulary-split lm_head asked for at [V, H] with its [V_local, H].
  std::vector<Tensor> ws;
  int64_t out = 0;
  bool any_bias = false;
  for (auto& p : parts) {
    ws.push_back(w.get(p.module + ".weight", {p.rows, in}));
    out += ws.back().dim(0);
    any_bias = any_bias || p.bias;
  }
  Linear l;
  l.name = name;
  l.weight = Tensor::empty({out, in});
  if (any_bias) l.bias = Tensor::zeros({out});
  int64_t off = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const FusedPart& p = parts[i];
    const Tensor& t = ws[i];
    const int64_t rows = t.dim(0);
    std::copy_n(t.f32(), t.numel(), l.weight.f32() + off * in);
    if (p.bias) {
      Tensor b = w.get(p.module + ".bias", {rows});
      std::copy_n(b.f32(), rows, l.bias.f32() + off);
    }
    l.slices.push_back({p.module, off, rows});
    off += rows;
  }
  return l;
}

Linear load_linear(WeightSource& w, const std::string& module, int64_t out, int64_t in, bool bias) {
  return load_fused(w, module, {{module, out, bias}}, in);
}

}  // namespace hylora
