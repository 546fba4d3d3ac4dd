// CPU reference of the multi-LoRA shrink/expand ops (ops/lora.h): one GEMM per (segment, slice), fp32 throughout.
#include "ops/lora.h"

#include <cblas.h>

#include <algorithm>

namespace hylora::ops {

namespace {
void check_segments(const LoraSegments& seg, int64_t n_rows_total) {
  HYLORA_CHECK(static_cast<int64_t>(seg.seg_begin.size()) == seg.num_segments() + 1 &&
                   (seg.num_segments() == 0 || seg.seg_begin.back() == seg.num_rows()),
               "internal: LoRA segment offsets do not cover the permutation");
  for (int64_t r : seg.perm)
    HYLORA_CHECK(r >= 0 && r < n_rows_total, "internal: LoRA row ", r, " outside [0, ", n_rows_total, ")");
}
}  // namespace

Tensor lora_shrink(const Tensor& x, const LoraSegments& seg, const std::vector<LoraSliceBuffers>& slices,
                   int64_t max_r) {
  const int64_t in = x.dim(1), n_sl = static_cast<int64_t>(slices.size());
  check_segments(seg, x.dim(0));
  Tensor s = Tensor::zeros({seg.num_rows(), n_sl, max_r});  // [n_lora_rows, slices, max_r] fp32
  const int64_t lds = n_sl * max_r;
  for (int64_t g = 0; g < seg.num_segments(); ++g) {
    const int64_t b = seg.seg_begin[g], m = seg.seg_begin[g + 1] - b;
    const int32_t slot = seg.seg_slot[g];
    if (m == 0) continue;
    Tensor xs = Tensor::empty({m, in});  // [m, in] rows of this segment
    for (int64_t i = 0; i < m; ++i) std::copy_n(x.f32() + seg.perm[b + i] * in, in, xs.f32() + i * in);
    for (int64_t k = 0; k < n_sl; ++k) {
      const float* A = slices[k].A[slot];  // [max_r, in]
      if (!A) continue;                    // the zeros already in s are this slice's contribution
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(max_r),
                  static_cast<int>(in), 1.0f, xs.f32(), static_cast<int>(in), A, static_cast<int>(in), 0.0f,
                  s.f32() + b * lds + k * max_r, static_cast<int>(lds));
    }
  }
  return s;
}

Tensor lora_shrink_embedding(const std::vector<int32_t>& ids, int64_t vocab, const LoraSegments& seg,
                             const std::vector<LoraSliceBuffers>& slices, int64_t max_r) {
  const int64_t n_sl = static_cast<int64_t>(slices.size());
  check_segments(seg, static_cast<int64_t>(ids.size()));
  Tensor s = Tensor::zeros({seg.num_rows(), n_sl, max_r});  // [n_lora_rows, slices, max_r] fp32
  for (int64_t g = 0; g < seg.num_segments(); ++g) {
    const int32_t slot = seg.seg_slot[g];
    for (int64_t k = 0; k < n_sl; ++k) {
      const float* A = slices[k].A[slot];  // [max_r, vocab]
      if (!A) continue;
      for (int64_t i = seg.seg_begin[g]; i < seg.seg_begin[g + 1]; ++i) {
        const int64_t id = ids[seg.perm[i]];
        float* out = s.f32() + (i * n_sl + k) * max_r;
        for (int64_t j = 0; j < max_r; ++j) out[j] = A[j * vocab + id];
      }
    }
  }
  return s;
}

void lora_expand(const Tensor& s, const LoraSegments& seg, const std::vector<LoraSliceBuffers>& slices,
                 int64_t max_r, Tensor& y) {
  const int64_t n_sl = static_cast<int64_t>(slices.size()), out = y.dim(1);
  check_segments(seg, y.dim(0));
  HYLORA_CHECK(s.ndim() == 3 && s.dim(0) == seg.num_rows() && s.dim(1) == n_sl && s.dim(2) == max_r,
               "internal: LoRA shrink result ", shape_str(s.shape()), " does not match the expand");
  const int64_t lds = n_sl * max_r;
  for (int64_t g = 0; g < seg.num_segments(); ++g) {
    const int64_t b = seg.seg_begin[g], m = seg.seg_begin[g + 1] - b;
    const int32_t slot = seg.seg_slot[g];
    if (m == 0) continue;
    for (int64_t k = 0; k < n_sl; ++k) {
      const float* B = slices[k].B[slot];  // [out_size, max_r]
      const int64_t off = slices[k].out_offset, sz = slices[k].out_size;
      if (!B || sz == 0) continue;
      HYLORA_CHECK(off >= 0 && off + sz <= out, "internal: LoRA slice [", off, ", ", off + sz,
                   ") outside the projection output of ", out);
      Tensor t = Tensor::empty({m, sz});  // [m, out_size] this slice's delta for the segment
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(sz),
                  static_cast<int>(max_r), 1.0f, s.f32() + b * lds + k * max_r, static_cast<int>(lds), B,
                  static_cast<int>(max_r), 0.0f, t.f32(), static_cast<int>(sz));
      for (int64_t i = 0; i < m; ++i) {
        float* yr = y.f32() + seg.perm[b + i] * out + off;
        const float* tr = t.f32() + i * sz;
        for (int64_t c = 0; c < sz; ++c) yr[c] += tr[c];
      }
    }
  }
}

}  // namespace hylora::ops
