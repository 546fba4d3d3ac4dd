// The tensor-parallel index ops (ops/tensor_parallel.h) against the host loops they replaced in
// models/tp_linear_forward.cpp, on random ids that hit every side of a rank's range: ids below, at the first, at the
// last and past the range; masks through a permutation into a strided 3-D shrink buffer; expert routing over several
// expert ranges. The CUDA kernels behind the same ops are checked against these loops' rules by
// tests/cuda/checks_tensor_parallel.cu.
#include <gtest/gtest.h>

#include "test_support.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "ops/tensor_parallel.h"

using namespace hylora;

namespace {

// Ids spread over [0, V) with the range edges [begin − 1, begin, begin + size − 1, begin + size] always present.
Tensor ids_around(int64_t T, int64_t V, int64_t begin, int64_t size, std::mt19937& rng) {
  Tensor ids = Tensor::empty({T}, DType::I32);
  std::uniform_int_distribution<int32_t> u(0, static_cast<int32_t>(V - 1));
  for (int64_t t = 0; t < T; ++t) ids.i32()[t] = u(rng);
  const int64_t edges[] = {begin - 1, begin, begin + size - 1, begin + size};
  for (int64_t i = 0; i < 4 && i < T; ++i)
    ids.i32()[i * (T / 4)] = static_cast<int32_t>(std::clamp<int64_t>(edges[i], 0, V - 1));
  return ids;
}

TEST(TensorParallelOps, LocalizeVocabIdsMatchesTheHostLoop) {
  std::mt19937 rng(7);
  ExecCtx ctx;
  const int64_t V = 1000;
  for (int64_t ranks : {1, 2, 4, 8}) {
    const int64_t size = V / ranks;
    for (int64_t r = 0; r < ranks; ++r) {
      const int64_t begin = r * size, T = 97;
      const Tensor ids = ids_around(T, V, begin, size, rng);
      Tensor local = Tensor::empty({T}, DType::I32), elsewhere = Tensor::empty({T}, DType::I32);
      ops::localize_vocab_ids(ctx, ids, begin, size, local, elsewhere);
      int held = 0;
      for (int64_t t = 0; t < T; ++t) {  // the loop tp_embed ran before
        const int64_t l = ids.i32()[t] - begin;
        const bool out = l < 0 || l >= size;
        ASSERT_EQ(elsewhere.i32()[t], out ? 1 : 0) << "rank " << r << " of " << ranks << ", id " << ids.i32()[t];
        ASSERT_EQ(local.i32()[t], out ? 0 : l) << "rank " << r << " of " << ranks << ", id " << ids.i32()[t];
        held += !out;
      }
      if (ranks > 1) {
        EXPECT_GT(held, 0) << "the edges put ids inside every range";
        EXPECT_LT(held, T) << "and outside it";
      }
    }
  }
}

TEST(TensorParallelOps, ZeroMaskedRowsMatchesTheHostLoopWithAndWithoutAPermutation) {
  std::mt19937 rng(11);
  ExecCtx ctx;
  const int64_t T = 29, W = 6;
  Tensor mask = Tensor::empty({T}, DType::I32);
  for (int64_t t = 0; t < T; ++t) mask.i32()[t] = static_cast<int32_t>(rng() % 3 == 0);
  mask.i32()[0] = 1;
  mask.i32()[1] = 0;
  auto fill = [&](Tensor& t) {
    for (int64_t i = 0; i < t.dim(0); ++i)
      for (int64_t j = 0; j < t.row_size(); ++j) t.f32()[i * t.ld() + j] = 1.0f + static_cast<float>(i * 100 + j);
  };
  // Unpermuted, a strided [T, W] view of a [T, W + 3] block: the columns past the view stay as they were.
  Tensor block = Tensor::empty({T, W + 3});
  for (int64_t i = 0; i < block.numel(); ++i) block.f32()[i] = -5.0f;
  Tensor view = block.cols(0, W);
  fill(view);
  ops::zero_masked_rows(ctx, mask, Tensor(), view);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < W + 3; ++j) {
      const float want = j >= W ? -5.0f : (mask.i32()[i] ? 0.0f : 1.0f + static_cast<float>(i * 100 + j));
      ASSERT_EQ(block.f32()[i * (W + 3) + j], want) << "row " << i << " column " << j;
    }
  // Through a permutation: a LoRA shrink s [rows, slices, max_r] whose logical row i is token perm[i] (fewer rows
  // than tokens: only the adapter rows).
  const int64_t rows = 17, slices = 2, R = 3;
  std::vector<int32_t> order(T);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  Tensor perm = Tensor::empty({rows}, DType::I32);
  for (int64_t i = 0; i < rows; ++i) perm.i32()[i] = order[i];
  Tensor s = Tensor::empty({rows, slices, R});
  for (int64_t i = 0; i < s.numel(); ++i) s.f32()[i] = 2.0f + static_cast<float>(i);
  ops::zero_masked_rows(ctx, mask, perm, s);
  int zeroed = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const bool z = mask.i32()[perm.i32()[i]] != 0;
    zeroed += z;
    for (int64_t j = 0; j < slices * R; ++j)
      ASSERT_EQ(s.f32()[i * slices * R + j], z ? 0.0f : 2.0f + static_cast<float>(i * slices * R + j))
          << "logical row " << i << " (token " << perm.i32()[i] << ")";
  }
  EXPECT_GT(zeroed, 0);
  EXPECT_LT(zeroed, rows);
}

TEST(TensorParallelOps, LocalizeExpertRoutingMatchesTheHostLoop) {
  std::mt19937 rng(13);
  ExecCtx ctx;
  const int64_t E = 16, T = 23, k = 4;
  Tensor ids = Tensor::empty({T, k}, DType::I32), w = Tensor::empty({T, k});
  std::uniform_int_distribution<int32_t> ue(0, E - 1);
  std::uniform_real_distribution<float> uw(0.1f, 1.0f);
  for (int64_t i = 0; i < T * k; ++i) {
    ids.i32()[i] = ue(rng);
    w.f32()[i] = uw(rng);
  }
  for (int64_t groups : {1, 2, 4, 16}) {
    const int64_t n = E / groups;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t e0 = g * n;
      Tensor lid = Tensor::empty({T, k}, DType::I32), lw = Tensor::empty({T, k});
      ops::localize_expert_routing(ctx, ids, w, e0, n, lid, lw);
      for (int64_t i = 0; i < T * k; ++i) {  // the loop tp_localize_routing ran before
        const int64_t e = ids.i32()[i] - e0;
        const bool mine = e >= 0 && e < n;
        ASSERT_EQ(lid.i32()[i], mine ? e : 0) << "pair " << i << ", experts [" << e0 << ", " << e0 + n << ")";
        ASSERT_EQ(lw.f32()[i], mine ? w.f32()[i] : 0.0f) << "pair " << i;
      }
    }
  }
}

}  // namespace
