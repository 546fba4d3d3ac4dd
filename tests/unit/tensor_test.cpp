#include <gtest/gtest.h>

#include "core/tensor.h"

using namespace hylora;

TEST(Tensor, Bf16RoundTripAndRounding) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(-2.5f)), -2.5f);
  // 1 + 2^-8 is exactly between two bf16 values; ties round to even (1.0).
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)), 1.0f);
}

TEST(Tensor, F16Decode) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x0001), 5.960464477539063e-08f);  // smallest subnormal
}

TEST(Tensor, RowsShareStorageAndReshapeChecksCount) {
  Tensor t = Tensor::zeros({4, 3});
  Tensor r = t.rows(1, 3);
  r.f32()[0] = 7.0f;
  EXPECT_EQ(t.f32()[3], 7.0f);
  EXPECT_THROW(t.reshape({5, 2}), Error);
  EXPECT_EQ(t.reshape({2, 6}).dim(1), 6);
}
