#include "lora/lora_applier.h"

#include <algorithm>

#include "models/model.h"
#include "ops/linear.h"
#include "ops/lora.h"
#include "ops/moe.h"

namespace hylora::lora {

void MultiLoraApplier::apply_linear(const Linear& lin, const Tensor& x, Tensor& y) const {
  if (batch_.empty() || lin.lora_id < 0) return;
  HYLORA_CHECK(x.dim(0) == batch_.num_rows(), "internal: ", lin.name, " runs on ", x.dim(0),
               " rows, but the step's LoRA metadata has ", batch_.num_rows());
  const auto& seg = batch_.segments;
  const auto slices = pool_.linear_buffers(lin.lora_id);
  Tensor s = ops::lora_shrink(x, seg, slices, pool_.max_rank());  // [n_lora_rows, slices, max_r] fp32
  ops::lora_expand(s, seg, slices, pool_.max_rank(), y);
  // modules_to_save replacements: y[rows, slice] += x[rows] (W' − W)ᵀ for that adapter's rows only.
  for (int64_t g = 0; g < seg.num_segments(); ++g) {
    const auto deltas = pool_.linear_deltas(seg.seg_slot[g], lin.lora_id);
    if (deltas.empty()) continue;
    const int64_t b = seg.seg_begin[g], m = seg.seg_begin[g + 1] - b, in = x.dim(1), out = y.dim(1);
    Tensor xs = Tensor::empty({m, in});  // [m, in]
    for (int64_t i = 0; i < m; ++i) std::copy_n(x.f32() + seg.perm[b + i] * in, in, xs.f32() + i * in);
    for (const DenseDelta* d : deltas) {
      const LoraSlice& sl = lin.slices[d->slice];
      Tensor t = ops::matmul_nt(xs, d->delta);  // [m, out_size]
      for (int64_t i = 0; i < m; ++i)
        for (int64_t c = 0; c < sl.out_size; ++c) y.f32()[seg.perm[b + i] * out + sl.out_offset + c] += t.f32()[i * sl.out_size + c];
    }
  }
}

void MultiLoraApplier::apply_expert(const ExpertLinear& lin, int64_t expert, const std::vector<int64_t>& token_rows,
                                    const Tensor& x, Tensor& y) const {
  if (batch_.empty() || lin.lora_id < 0) return;
  // The expert's tokens grouped by their slot: the same ops as a Linear, over this expert's slot buffers.
  const ops::LoraSegments seg = segments_of_rows(batch_.row_slot, token_rows);
  if (seg.num_rows() == 0) return;
  const auto slices = pool_.expert_buffers(lin.lora_id, expert);
  Tensor s = ops::lora_shrink(x, seg, slices, pool_.max_rank());  // [n_lora_rows, slices, max_r] fp32
  ops::lora_expand(s, seg, slices, pool_.max_rank(), y);
}

void MultiLoraApplier::apply_embedding(const Embedding& emb, const std::vector<int32_t>& ids, Tensor& y) const {
  if (batch_.empty()) return;
  HYLORA_CHECK(static_cast<int64_t>(ids.size()) == batch_.num_rows(), "internal: embedding of ", ids.size(),
               " tokens, but the step's LoRA metadata has ", batch_.num_rows());
  const auto& seg = batch_.segments;
  const auto slices = pool_.embedding_buffers();
  const int64_t vocab = emb.table.dim(0), H = emb.table.dim(1);
  Tensor s = ops::lora_shrink_embedding(ids, vocab, seg, slices, pool_.max_rank());  // [n_lora_rows, 1, max_r]
  ops::lora_expand(s, seg, slices, pool_.max_rank(), y);
  // A replaced embedding table: y[row] += (E' − E)[id].
  for (int64_t g = 0; g < seg.num_segments(); ++g) {
    const Tensor* d = pool_.embedding_delta(seg.seg_slot[g]);
    if (!d) continue;
    for (int64_t i = seg.seg_begin[g]; i < seg.seg_begin[g + 1]; ++i) {
      const int64_t row = seg.perm[i];
      const float* src = d->f32() + static_cast<int64_t>(ids[row]) * H;
      for (int64_t c = 0; c < H; ++c) y.f32()[row * H + c] += src[c];
    }
  }
}

}  // namespace hylora::lora
