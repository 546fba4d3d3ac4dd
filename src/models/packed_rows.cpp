#include "models/packed_rows.h"

#include <cstring>

namespace hylora {

Tensor copy_block(const Tensor& src, int64_t r0, int64_t n, int64_t c0, int64_t w) {
  const int64_t ld = src.dim(1);
  HYLORA_CHECK(r0 + n <= src.dim(0) && c0 + w <= ld, "internal: copy_block out of range");
  Tensor out = Tensor::empty({n, w});
  for (int64_t r = 0; r < n; ++r) std::memcpy(out.f32() + r * w, src.f32() + (r0 + r) * ld + c0, w * sizeof(float));
  return out;
}

void put_rows(Tensor& dst, int64_t r0, const Tensor& src) {
  HYLORA_CHECK(src.dim(1) == dst.dim(1) && r0 + src.dim(0) <= dst.dim(0), "internal: put_rows shapes");
  std::memcpy(dst.f32() + r0 * dst.dim(1), src.f32(), src.numel() * sizeof(float));
}

LayerCache& layer_cache(const SeqSpan& s, int64_t layer) {
  HYLORA_CHECK(s.cache && layer < static_cast<int64_t>(s.cache->layers.size()),
               "internal: sequence cache missing layer ", layer);
  return s.cache->layers[layer];
}

LayerCache& attention_cache(const SeqSpan& s, int64_t layer, int64_t k_width) {
  LayerCache& lc = layer_cache(s, layer);
  if (s.past_len == 0) {
    lc.k.clear();
    lc.v.clear();
  }
  HYLORA_CHECK(static_cast<int64_t>(lc.k.size()) == s.past_len * k_width, "internal: attention layer ", layer,
               " cache holds ", lc.k.size() / k_width, " tokens, expected past_len ", s.past_len);
  return lc;
}

LayerCache& recurrent_cache(const SeqSpan& s, int64_t layer, const Shape& conv_state, const Shape& recurrent) {
  LayerCache& lc = layer_cache(s, layer);
  if (s.past_len == 0) {
    lc.conv_state = Tensor::zeros(conv_state);
    lc.recurrent = Tensor::zeros(recurrent);
  }
  HYLORA_CHECK(lc.conv_state.defined() && lc.recurrent.defined(), "internal: layer ", layer,
               " continues a sequence (past_len ", s.past_len, ") without a cached state");
  return lc;
}

}  // namespace hylora
