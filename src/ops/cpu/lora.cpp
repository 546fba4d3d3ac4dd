// CPU reference of the multi-LoRA shrink/expand ops (ops/lora.h): one GEMM per (segment, slice), fp32 throughout.
#include "ops/lora.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>

namespace hylora::ops::cpu {

namespace {
int i32(int64_t v) { return static_cast<int>(v); }

int64_t max_rank_of(const std::vector<const LoraSliceBuffers*>& slices) {
  HYLORA_CHECK(!slices.empty() && slices[0]->A.ndim() == 3, "internal: LoRA op without slices");
  return slices[0]->A.dim(1);
}

// The slot buffers of one group: A [max_r, in], B [out_size, max_r] (host pointers), or null when the group does not
// touch the slice (its zeros contribute nothing).
const float* group_A(const LoraSliceBuffers& sl, int32_t g) {
  if (sl.rank.i32()[g] == 0) return nullptr;
  return sl.A.f32() + static_cast<int64_t>(g) * sl.A.dim(1) * sl.A.dim(2);
}
const float* group_B(const LoraSliceBuffers& sl, int32_t g) {
  if (sl.rank.i32()[g] == 0) return nullptr;
  return sl.B.f32() + static_cast<int64_t>(g) * sl.B.dim(1) * sl.B.dim(2);
}
}  // namespace

void lora_shrink(ExecCtx& ctx, const Tensor& x, const LoraSegments& seg, const std::vector<const LoraSliceBuffers*>& slices,
                 Tensor& s) {
  const int64_t in = x.dim(1), n_sl = static_cast<int64_t>(slices.size()), max_r = max_rank_of(slices);
  HYLORA_CHECK(s.ndim() == 3 && s.dim(0) == seg.num_rows && s.dim(1) == n_sl && s.dim(2) == max_r,
               "internal: LoRA shrink output ", shape_str(s.shape()));
  std::memset(s.raw(), 0, s.nbytes());
  const int64_t lds = n_sl * max_r;
  const int32_t* perm = seg.perm.i32();
  for (int64_t g = 0; g < seg.num_segments; ++g) {
    const int64_t b = seg.indptr.i32()[g], m = seg.indptr.i32()[g + 1] - b;
    const int32_t grp = seg.group.i32()[g];
    if (m == 0) continue;
    Tensor xs = ctx.scratch.tensor({m, in});  // [m, in] rows of this segment
    for (int64_t i = 0; i < m; ++i) std::memcpy(xs.f32() + i * in, x.f32() + perm[b + i] * x.ld(), in * sizeof(float));
    for (int64_t k = 0; k < n_sl; ++k) {
      const float* A = group_A(*slices[k], grp);  // [max_r, in]
      if (!A) continue;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, i32(m), i32(max_r), i32(in), 1.0f, xs.f32(), i32(in), A,
                  i32(in), 0.0f, s.f32() + b * lds + k * max_r, i32(lds));
    }
  }
}

void lora_shrink_embedding(ExecCtx&, const Tensor& ids, const LoraSegments& seg,
                           const std::vector<const LoraSliceBuffers*>& slices, Tensor& s) {
  const int64_t n_sl = static_cast<int64_t>(slices.size()), max_r = max_rank_of(slices);
  HYLORA_CHECK(s.ndim() == 3 && s.dim(0) == seg.num_rows && s.dim(1) == n_sl && s.dim(2) == max_r,
               "internal: LoRA shrink output ", shape_str(s.shape()));
  std::memset(s.raw(), 0, s.nbytes());
  for (int64_t g = 0; g < seg.num_segments; ++g) {
    const int32_t grp = seg.group.i32()[g];
    for (int64_t k = 0; k < n_sl; ++k) {
      const float* A = group_A(*slices[k], grp);  // [max_r, vocab]
      if (!A) continue;
      const int64_t vocab = slices[k]->A.dim(2);
      for (int64_t i = seg.indptr.i32()[g]; i < seg.indptr.i32()[g + 1]; ++i) {
        const int64_t id = ids.i32()[seg.perm.i32()[i]];
        float* out = s.f32() + (i * n_sl + k) * max_r;
        for (int64_t j = 0; j < max_r; ++j) out[j] = A[j * vocab + id];
      }
    }
  }
}

void lora_expand(ExecCtx& ctx, const Tensor& s, const LoraSegments& seg, const std::vector<const LoraSliceBuffers*>& slices,
                 Tensor& y) {
  const int64_t n_sl = static_cast<int64_t>(slices.size()), out = y.dim(1), max_r = max_rank_of(slices);
  HYLORA_CHECK(s.ndim() == 3 && s.dim(0) == seg.num_rows && s.dim(1) == n_sl && s.dim(2) == max_r,
               "internal: LoRA shrink result ", shape_str(s.shape()), " does not match the expand");
  const int64_t lds = n_sl * max_r;
  const int32_t* perm = seg.perm.i32();
  for (int64_t g = 0; g < seg.num_segments; ++g) {
    const int64_t b = seg.indptr.i32()[g], m = seg.indptr.i32()[g + 1] - b;
    const int32_t grp = seg.group.i32()[g];
    if (m == 0) continue;
    for (int64_t k = 0; k < n_sl; ++k) {
      const float* B = group_B(*slices[k], grp);  // [out_size, max_r]
      const int64_t off = slices[k]->out_offset, sz = slices[k]->out_size;
      if (!B || sz == 0) continue;
      HYLORA_CHECK(off >= 0 && off + sz <= out, "internal: LoRA slice [", off, ", ", off + sz,
                   ") outside the projection output of ", out);
      Tensor t = ctx.scratch.tensor({m, sz});  // [m, out_size] this slice's delta for the segment
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, i32(m), i32(sz), i32(max_r), 1.0f,
                  s.f32() + b * lds + k * max_r, i32(lds), B, i32(max_r), 0.0f, t.f32(), i32(sz));
      for (int64_t i = 0; i < m; ++i) {
        float* yr = y.f32() + perm[b + i] * y.ld() + off;
        const float* tr = t.f32() + i * sz;
        for (int64_t c = 0; c < sz; ++c) yr[c] += tr[c];
      }
    }
  }
}

void lora_segment_dense_delta(ExecCtx&, const Tensor& x, const LoraSegments& seg, int64_t g, const Tensor& delta,
                              int64_t out_offset, Tensor& y) {
  const int64_t in = x.dim(1), n = delta.dim(0);
  HYLORA_CHECK(delta.dim(1) == in && out_offset + n <= y.dim(1), "internal: dense delta ", shape_str(delta.shape()));
  const int32_t* perm = seg.perm.i32();
  for (int32_t i = seg.indptr.i32()[g]; i < seg.indptr.i32()[g + 1]; ++i) {
    const float* xr = x.f32() + perm[i] * x.ld();
    float* yr = y.f32() + perm[i] * y.ld() + out_offset;
    for (int64_t c = 0; c < n; ++c) {
      const float* d = delta.f32() + c * in;
      double acc = 0.0;
      for (int64_t j = 0; j < in; ++j) acc += static_cast<double>(xr[j]) * d[j];
      yr[c] += static_cast<float>(acc);
    }
  }
}

void lora_segment_embedding_delta(ExecCtx&, const Tensor& ids, const LoraSegments& seg, int64_t g, const Tensor& delta,
                                  Tensor& y) {
  const int64_t H = y.dim(1);
  HYLORA_CHECK(delta.dim(1) == H, "internal: embedding delta ", shape_str(delta.shape()));
  for (int32_t i = seg.indptr.i32()[g]; i < seg.indptr.i32()[g + 1]; ++i) {
    const int64_t row = seg.perm.i32()[i];
    const float* src = delta.f32() + static_cast<int64_t>(ids.i32()[row]) * H;
    float* dst = y.f32() + row * y.ld();
    for (int64_t c = 0; c < H; ++c) dst[c] += src[c];
  }
}

void segment_index(ExecCtx&, const LoraSegments& seg, Tensor& out) {
  std::fill(out.i32(), out.i32() + out.numel(), 0);
  for (int64_t g = 0; g < seg.num_segments; ++g)
    for (int32_t i = seg.indptr.i32()[g]; i < seg.indptr.i32()[g + 1]; ++i)
      out.i32()[seg.perm.i32()[i]] = static_cast<int32_t>(g + 1);
}

}  // namespace hylora::ops::cpu
