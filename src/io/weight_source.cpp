#include "io/weight_source.h"

#include <algorithm>

#include "core/error.h"

#include "io/random_weights.h"
#include "io/weight_loader.h"

namespace hylora {

Tensor cut_blocks(const Tensor& t, const std::vector<Span>& groups, const std::vector<Span>& rows,
                  const std::vector<Span>& cols) {
  HYLORA_CHECK(t.contiguous() && t.dtype() == DType::F32 && (t.ndim() == 2 || t.ndim() == 3),
               "internal: cut_blocks expects a contiguous float32 [G, R, C] or [R, C] tensor, got ",
               shape_str(t.shape()));
  const bool three = t.ndim() == 3;
  const int64_t G = three ? t.dim(0) : 1, R = t.dim(three ? 1 : 0), C = t.dim(three ? 2 : 1);
  const std::vector<Span> gs = spans_or_all(groups, G), rs = spans_or_all(rows, R), cs = spans_or_all(cols, C);
  const int64_t og = spans_total(gs), orows = spans_total(rs), ocols = spans_total(cs);
  Tensor out = three ? Tensor::empty({og, orows, ocols}) : Tensor::empty({orows, ocols});
  float* dst = out.f32();
  for (const Span& g : gs)
    for (int64_t e = g.begin; e < g.begin + g.size; ++e)
      for (const Span& r : rs)
        for (int64_t i = r.begin; i < r.begin + r.size; ++i)
          for (const Span& c : cs) {
            HYLORA_CHECK(e < G && i < R && c.begin + c.size <= C, "internal: cut_blocks out of range");
            const float* src = t.f32() + (e * R + i) * C + c.begin;
            std::copy(src, src + c.size, dst);
            dst += c.size;
          }
  return out;
}

Tensor WeightSource::get_block(const std::string& name, const Shape& as, int64_t rows, int64_t cols,
                               const std::vector<Span>& keep_rows, const std::vector<Span>& keep_cols) {
  return cut_blocks(get(name, as).reshape({rows, cols}), {}, keep_rows, keep_cols);
}

Tensor WeightSource::experts_block(const std::string& prefix, const std::string& fused,
                                   const std::vector<std::string>& parts, const Shape& full, Span keep_experts,
                                   const std::vector<Span>& keep_rows, const std::vector<Span>& keep_cols) {
  return cut_blocks(experts(prefix, fused, parts, full), {keep_experts}, keep_rows, keep_cols);
}

std::unique_ptr<WeightSource> open_weights(const WeightOrigin& origin, const WeightNaming& naming) {
  std::unique_ptr<WeightSource> w;
  if (origin.random)
    w = std::make_unique<RandomWeights>(origin.seed, naming.one_plus_norm);
  else
    w = std::make_unique<WeightLoader>(Checkpoint::open_dir(origin.checkpoint_dir), naming.rename);
  return origin.wrap ? origin.wrap(std::move(w)) : std::move(w);
}

}  // namespace hylora
