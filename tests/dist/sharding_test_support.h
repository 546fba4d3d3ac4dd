#pragma once
// Helpers of the sharded-math tests: random weights, stacked multi-slice LoRA slot buffers zero past each group's
// rank, a step's LoRA segments, the unsharded reference projection and the relative error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "dist/shard_spec.h"
#include "ops/linear.h"
#include "ops/lora.h"

namespace hylora::dist::test {

inline constexpr double kTolerance = 1e-5;  // relative to the largest |y|: float32 rounding of differently summed terms

inline Tensor randn(Shape shape, std::mt19937& g, float scale = 1.0f) {
  Tensor t = Tensor::empty(std::move(shape));
  std::normal_distribution<float> n(0.0f, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = n(g);
  return t;
}

// Stacked slot buffers of one slice: A [G, max_r, in], B [G, out, max_r], zero past each group's rank.
inline ops::LoraSliceBuffers lora_slice(std::mt19937& g, int64_t groups, int64_t max_r, int64_t in, int64_t out,
                                 const std::vector<int32_t>& ranks, int64_t out_offset) {
  ops::LoraSliceBuffers s;
  s.out_offset = out_offset;
  s.out_size = out;
  s.A = Tensor::zeros({groups, max_r, in});
  s.B = Tensor::zeros({groups, out, max_r});
  s.rank = Tensor::empty({groups}, DType::I32);
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (int64_t q = 0; q < groups; ++q) {
    const int32_t r = ranks[q % ranks.size()];
    s.rank.i32()[q] = r;
    for (int64_t j = 0; j < r; ++j)
      for (int64_t c = 0; c < in; ++c) s.A.f32()[(q * max_r + j) * in + c] = n(g) / std::sqrt(static_cast<float>(in));
    for (int64_t o = 0; o < out; ++o)
      for (int64_t j = 0; j < r; ++j) s.B.f32()[(q * out + o) * max_r + j] = 0.5f * n(g);
  }
  return s;
}

inline std::vector<ops::LoraSliceBuffers> lora_for(const ProjectionSpec& spec, std::mt19937& g, int64_t groups, int64_t max_r,
                                            const std::vector<int32_t>& ranks) {
  std::vector<ops::LoraSliceBuffers> out;
  int64_t off = 0;
  for (size_t k = 0; k < spec.slices.size(); ++k) {
    // Each slice its own ranks (rotated), so the slices of one adapter differ in rank too.
    std::vector<int32_t> rk = ranks;
    std::rotate(rk.begin(), rk.begin() + static_cast<long>(k % rk.size()), rk.end());
    out.push_back(lora_slice(g, groups, max_r, spec.in_features(), spec.slices[k].rows(), rk, off));
    off += spec.slices[k].rows();
  }
  return out;
}

// Segments of a step whose rows are bound to slots (-1 = base): adapter rows grouped by slot, step order inside.
struct Segments {
  Tensor perm, indptr, group;
  ops::LoraSegments seg;
  explicit Segments(const std::vector<int>& row_slot, int slots) {
    std::vector<int32_t> p, ip{0}, gr;
    for (int s = 0; s < slots; ++s) {
      size_t before = p.size();
      for (size_t t = 0; t < row_slot.size(); ++t)
        if (row_slot[t] == s) p.push_back(static_cast<int32_t>(t));
      if (p.size() > before) {
        ip.push_back(static_cast<int32_t>(p.size()));
        gr.push_back(s);
      }
    }
    auto make = [](const std::vector<int32_t>& v) {
      Tensor t = Tensor::empty({static_cast<int64_t>(std::max<size_t>(v.size(), 1))}, DType::I32);
      std::copy(v.begin(), v.end(), t.i32());
      return t;
    };
    perm = make(p), indptr = make(ip), group = make(gr);
    seg.num_rows = static_cast<int64_t>(p.size());
    seg.num_segments = static_cast<int64_t>(gr.size());
    seg.perm = perm.rows(0, seg.num_rows);
    seg.indptr = indptr.rows(0, seg.num_segments + 1);
    seg.group = group.rows(0, seg.num_segments);
    seg.group_host = gr;
  }
};

inline std::vector<const ops::LoraSliceBuffers*> ptrs(const std::vector<ops::LoraSliceBuffers>& v) {
  std::vector<const ops::LoraSliceBuffers*> p;
  for (const auto& s : v) p.push_back(&s);
  return p;
}

// The unsharded projection: y [T, out] = x Wᵀ + b + LoRA.
inline Tensor reference(const Tensor& x, const Tensor& w, const Tensor& b, const std::vector<ops::LoraSliceBuffers>& lora,
                 const ops::LoraSegments& seg) {
  ExecCtx ctx;
  Tensor y = Tensor::empty({x.dim(0), w.dim(0)});
  ops::matmul_nt(ctx, x, w, y);
  if (b.defined()) ops::add_bias(ctx, b, y);
  Tensor s = Tensor::empty({seg.num_rows, static_cast<int64_t>(lora.size()), lora[0].A.dim(1)});
  ops::lora_shrink(ctx, x, seg, ptrs(lora), s);
  ops::lora_expand(ctx, s, seg, ptrs(lora), y);
  return y;
}

inline double max_abs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(t.f32()[i])));
  return m;
}

// max |a − b| / max |b|, both contiguous of the same shape.
inline double rel_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(a.f32()[i]) - b.f32()[i]));
  return m / std::max(max_abs(b), 1e-30);
}

// A GDN-like fused column projection: slices [qkv: q (4 heads × 3), k (same), v (8 × 5)], [z 8 × 5], [b 8], [a 8]
// (Hk 4, Hv 8), input 20; and a row projection reading the value heads with two output slices of 9 and 4 rows.
inline ModelShardSpec toy_spec() {
  ModelShardSpec s;
  s.where = "toy";
  ProjectionSpec in;
  in.name = "in_proj";
  auto q = [](const char* n) { return split_or_replicate(n, "key", "Hk", 4, 3); };
  auto v = [](const char* n, int64_t size) { return split(n, "value", "Hv", 8, size); };
  in.slices = {{"qkv", {q("q"), q("k"), v("v", 5)}}, {"z", {v("z", 5)}}, {"b", {v("b", 1)}}, {"a", {v("a", 1)}}};
  in.in_parts = {whole("in", 20)};
  s.projections.push_back(in);
  ProjectionSpec out;
  out.name = "out_proj";
  out.slices = {{"out_a", {whole("a", 9)}}, {"out_b", {whole("b", 4)}}};
  out.in_parts = {v("value", 5)};
  s.projections.push_back(out);
  s.relations.push_back({"value", "key", 2});
  return s;
}

inline const std::vector<int> kRowSlot{-1, 0, 2, 0, -1, 1, 2, 2, -1, 0, 1, -1, 2};  // T 13, three adapters + base rows
inline constexpr int kSlots = 3;
inline constexpr int64_t kMaxRank = 8;
inline const std::vector<int32_t> kRanks{3, 8, 5};  // below and at max_rank, different per slot and slice

}  // namespace hylora::dist::test
