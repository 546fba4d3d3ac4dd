#pragma once
// Moving rows and column blocks of a packed batch between the all-rows projections and the per-sequence kernels.
#include "core/tensor.h"
#include "engine/forward_batch.h"

namespace hylora {

// Copy of src[r0 : r0+n, c0 : c0+w] (src [rows, ld]) as a contiguous [n, w] tensor.
Tensor copy_block(const Tensor& src, int64_t r0, int64_t n, int64_t c0, int64_t w);
// Copy of columns [c0, c0 + w) of every row of src.
inline Tensor copy_cols(const Tensor& src, int64_t c0, int64_t w) { return copy_block(src, 0, src.dim(0), c0, w); }
// dst rows [r0, r0 + src.rows) = src (same width).
void put_rows(Tensor& dst, int64_t r0, const Tensor& src);
// The sequence's cache of one layer (checked).
LayerCache& layer_cache(const SeqSpan& s, int64_t layer);
// The attention cache of a sequence for this step: emptied for a new sequence (past_len 0), otherwise checked to
// hold exactly past_len tokens of `k_width` floats each, so a scheduling bug cannot silently attend to stale rows.
LayerCache& attention_cache(const SeqSpan& s, int64_t layer, int64_t k_width);
// The conv + recurrent state of a sequence for this step: zeros for a new sequence, otherwise checked to exist.
LayerCache& recurrent_cache(const SeqSpan& s, int64_t layer, const Shape& conv_state, const Shape& recurrent);

}  // namespace hylora
