// Checks of the kernels behind `--dtype bfloat16` in the engine (bf16 weights, fp32 activations): the mixed cuBLASLt
// GEMM (bf16 x and W, fp32 y and bias), the fp32 -> bf16 activation cast, and the embedding and naive expert GEMM of
// extra.h reading fp32 or bf16 weights. References in double from exactly the values the GPU sees.
#include <cuda_bf16.h>

#include "ops/cuda/extra.h"
#include "ops/cuda/gemm.h"
#include "ops/cuda/gemv.h"
#include "tests/cuda/check_util.h"

using namespace chk;
namespace hc = hylora::cuda;

namespace {

// Double reference of y[M, N] (ld ldy) = (y0 if acc) (+ bias) + x[M, K] · W[N, K]ᵀ, x rounded to bf16 first when
// round_x, beside the GPU's values at the same places; pad_ok: the columns past N of every row kept y0's values.
struct LinearCheck {
  std::vector<float> got;
  std::vector<double> ref;
  bool pad_ok = true;
};
LinearCheck linear_check(const std::vector<float>& y, const std::vector<float>& x, int64_t ldx,
                         const std::vector<float>& W, int64_t ldw, const std::vector<float>& y0, int64_t ldy,
                         const float* bias, int64_t M, int64_t N, int64_t K, bool acc, bool round_x) {
  LinearCheck c;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double a = acc ? y0[m * ldy + n] : 0.0;
      if (bias) a += bias[n];
      for (int64_t k = 0; k < K; ++k) {
        const float xv = round_x ? round_dt(x[m * ldx + k], DType::bf16) : x[m * ldx + k];
        a += static_cast<double>(xv) * W[n * ldw + k];
      }
      c.ref.push_back(a);
      c.got.push_back(y[m * ldy + n]);
    }
    for (int64_t n = N; n < ldy; ++n) c.pad_ok &= y[m * ldy + n] == y0[m * ldy + n];
  }
  return c;
}

void check_mixed_gemm() {
  hc::GemmHandle h;
  struct S { int64_t M, N, K; bool bias, acc; };
  std::vector<S> shapes = {{1, 2560, 1024, false, false}, {37, 1000, 513, true, false}, {300, 768, 640, false, true},
                           {129, 4096, 256, true, true}};
  if (g_small) shapes = {{5, 64, 40, true, true}, {33, 96, 130, false, false}};
  for (auto s : shapes) {
    const int64_t ldx = s.K + 8, ldw = s.K + 4, ldy = s.N + 16;
    // x and W hold bf16 values (the engine rounds x first); y, bias and the accumulation are fp32.
    auto x = randn(s.M * ldx, 1.0f, DType::bf16), W = randn(s.N * ldw, 0.05f, DType::bf16),
         b = randn(s.N, 1.0f, DType::f32), y0 = randn(s.M * ldy, 1.0f, DType::f32);
    Buf dx = up(x, DType::bf16), dW = up(W, DType::bf16), db = up(b, DType::f32), dy = up(y0, DType::f32);
    CK(hc::gemm(h, DType::bf16, DType::f32, dx.p, ldx, dW.p, ldw, dy.p, ldy, s.M, s.N, s.K, s.bias ? db.p : nullptr,
                s.acc, nullptr));
    const LinearCheck c = linear_check(down(dy, s.M * ldy, DType::f32), x, ldx, W, ldw, y0, ldy,
                                       s.bias ? b.data() : nullptr, s.M, s.N, s.K, s.acc, false);
    char name[128];
    std::snprintf(name, sizeof name, "gemm bf16->f32 M=%ld N=%ld K=%ld bias=%d acc=%d", (long)s.M, (long)s.N,
                  (long)s.K, s.bias, s.acc);
    compare(name, DType::f32, c.got, c.ref, 2e-5);  // fp32 output: no bf16 rounding of the product
    expect(std::string(name) + " ld padding untouched", c.pad_ok);
  }
  // f32 in, bf16 out is not a mode: refused, not silently wrong.
  expect("gemm f32->bf16 refused",
         hc::gemm(h, DType::f32, DType::bf16, nullptr, 1, nullptr, 1, nullptr, 1, 1, 1, 1, nullptr, false, nullptr) ==
             cudaErrorInvalidValue);
}

// The decode GEMM (gemv.h): fp32 x rounded to bf16 in the kernel, bf16 W, fp32 y; both layouts (N large: a warp per
// two columns; N small: K split over a block's warps), M = 1..8, an odd N (a lone last column), padded leading
// dimensions, accumulate; operands it does not take are refused.
void check_gemv() {
  struct S { int64_t M, N, K; bool acc; };
  std::vector<S> shapes = {{1, 4096, 2560, false}, {1, 64, 2560, false}, {3, 9217, 1024, true}, {8, 2560, 9216, false},
                           {5, 7, 40, true},       {2, 1, 256, false},    {4, 300, 4096, true}, {7, 20000, 512, false},
                           {1, 30000, 2560, true}};
  if (g_small) shapes = {{1, 33, 64, false}, {3, 5, 2056, true}, {8, 70, 16, false}};
  for (auto s : shapes) {
    const int64_t ldx = s.K + 4, ldw = s.K + 8, ldy = s.N + 3;
    auto x = randn(s.M * ldx, 1.0f, DType::f32), W = randn(s.N * ldw, 0.05f, DType::bf16),
         y0 = randn(s.M * ldy, 1.0f, DType::f32);
    Buf dx = up(x, DType::f32), dW = up(W, DType::bf16), dy = up(y0, DType::f32);
    CK(hc::gemv_bf16(dx.as<float>(), ldx, dW.p, ldw, dy.as<float>(), ldy, s.M, s.N, s.K, s.acc, nullptr));
    const LinearCheck c = linear_check(down(dy, s.M * ldy, DType::f32), x, ldx, W, ldw, y0, ldy, nullptr, s.M, s.N,
                                       s.K, s.acc, true);
    char name[128];
    std::snprintf(name, sizeof name, "gemv bf16 M=%ld N=%ld K=%ld acc=%d", (long)s.M, (long)s.N, (long)s.K, s.acc);
    compare(name, DType::f32, c.got, c.ref, 2e-5);
    expect(std::string(name) + " ld padding untouched", c.pad_ok);
  }
  Buf dx(64 * 4 * 9), dW(64 * 64 * 2);
  const float* xa = dx.as<float>();
  expect("gemv refuses K % 8 != 0",
         hc::gemv_bf16(xa, 12, dW.p, 16, nullptr, 1, 1, 1, 12, false, nullptr) == cudaErrorInvalidValue);
  expect("gemv refuses M > kGemvMaxRows",
         hc::gemv_bf16(xa, 16, dW.p, 16, nullptr, 1, 9, 1, 16, false, nullptr) == cudaErrorInvalidValue);
  expect("gemv refuses an unaligned x", !hc::gemv_bf16_fits(xa + 1, 16, dW.p, 16, 1, 16));
  expect("gemv refuses an unaligned W row stride", !hc::gemv_bf16_fits(xa, 16, dW.p, 20, 1, 16));

  // gemv_f32: one row over fp32 weights, x not rounded (the float32 mode's products); both layouts, a lone last
  // column, padded leading dimensions, accumulate; fp32-level agreement with the double reference.
  std::vector<S> f32_shapes = {{1, 256, 2048, false}, {1, 4096, 2560, true}, {1, 1, 512, false},
                               {1, 9217, 1024, true}, {1, 64, 9216, false}, {1, 30000, 2560, false}};
  if (g_small) f32_shapes = {{1, 33, 64, false}, {1, 5, 2056, true}};
  for (auto s : f32_shapes) {
    const int64_t ldx = s.K + 4, ldw = s.K + 4, ldy = s.N + 3;
    auto x = randn(ldx, 1.0f, DType::f32), W = randn(s.N * ldw, 0.05f, DType::f32), y0 = randn(ldy, 1.0f, DType::f32);
    Buf dx2 = up(x, DType::f32), dW2 = up(W, DType::f32), dy = up(y0, DType::f32);
    CK(hc::gemv_f32(dx2.as<float>(), ldx, dW2.as<float>(), ldw, dy.as<float>(), ldy, 1, s.N, s.K, s.acc, nullptr));
    const LinearCheck c = linear_check(down(dy, ldy, DType::f32), x, ldx, W, ldw, y0, ldy, nullptr, 1, s.N, s.K,
                                       s.acc, false);
    char name[128];
    std::snprintf(name, sizeof name, "gemv f32 N=%ld K=%ld acc=%d", (long)s.N, (long)s.K, s.acc);
    compare(name, DType::f32, c.got, c.ref, 2e-5);
    expect(std::string(name) + " ld padding untouched", c.pad_ok);
  }
  Buf dWf(64 * 64 * 4);
  expect("gemv f32 refuses two rows", !hc::gemv_f32_fits(xa, 16, dWf.as<float>(), 16, 2, 16));
  expect("gemv f32 refuses K % 8 != 0",
         hc::gemv_f32(xa, 12, dWf.as<float>(), 12, nullptr, 1, 1, 1, 12, false, nullptr) == cudaErrorInvalidValue);
  expect("gemv f32 refuses an unaligned W row stride", !hc::gemv_f32_fits(xa, 16, dWf.as<float>(), 18, 1, 16));
}

void check_cast() {
  for (auto [rows, cols] : g_small ? std::vector<std::pair<int64_t, int64_t>>{{3, 70}}
                                   : std::vector<std::pair<int64_t, int64_t>>{{1, 2560}, {37, 513}, {300, 4096}}) {
    const int64_t ldx = cols + 3, ldy = cols + 5;
    auto x = randn(rows * ldx, 3.0f, DType::f32);
    std::vector<float> y0(rows * ldy, 7.0f);
    Buf dx = up(x, DType::f32), dy = up(y0, DType::bf16);
    CK(hc::extra::to_bf16(dx.as<float>(), ldx, dy.p, ldy, rows, cols, nullptr));
    auto got = down(dy, rows * ldy, DType::bf16);
    bool exact = true, pad_ok = true;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) exact &= got[r * ldy + c] == round_dt(x[r * ldx + c], DType::bf16);
      for (int64_t c = cols; c < ldy; ++c) pad_ok &= got[r * ldy + c] == 7.0f;
    }
    char name[96];
    std::snprintf(name, sizeof name, "to_bf16 rows=%ld cols=%ld", (long)rows, (long)cols);
    expect(std::string(name) + " = round-to-nearest-even", exact);
    expect(std::string(name) + " ld padding untouched", pad_ok);
  }
}

void check_embedding(DType wd) {
  const int64_t V = g_small ? 50 : 1000, H = g_small ? 24 : 520, n = g_small ? 7 : 300, ldy = H + 9;
  auto table = randn(V * H, 1.0f, wd);
  std::vector<int32_t> ids(n);
  for (auto& i : ids) i = randint(0, static_cast<int>(V - 1));
  ids[0] = static_cast<int32_t>(V - 1);
  Buf dt = up(table, wd), di = up_raw(ids), dy(n * ldy * 4);
  CK(hc::extra::embedding(wd, dt.p, H, di.as<int32_t>(), n, dy.as<float>(), ldy, nullptr));
  auto got = down(dy, n * ldy, DType::f32);
  bool exact = true;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < H; ++c) exact &= got[r * ldy + c] == table[ids[r] * H + c];
  expect(std::string("embedding table=") + dname(wd) + " -> f32 rows exact", exact);
}

void check_expert_gemm(DType wd) {
  struct S { int64_t E, P, N, K; };
  std::vector<S> shapes = {{8, 300, 96, 200}, {4, 17, 512, 64}};
  if (g_small) shapes = {{3, 9, 16, 40}};
  for (auto s : shapes) {
    const int64_t ldx = s.K + 2, ldy = s.N + 3;
    auto xs = randn(s.P * ldx, 1.0f, DType::f32), W = randn(s.E * s.N * s.K, 0.1f, wd);
    // Sorted rows of each expert (some experts empty).
    std::vector<int32_t> off(s.E + 1, 0);
    for (int64_t p = 0, e = 0; e < s.E; ++e) {
      off[e] = static_cast<int32_t>(p);
      if (e % 3 != 1) p = std::min<int64_t>(s.P, p + randint(1, static_cast<int>(2 * s.P / s.E)));
      if (e == s.E - 1) p = s.P;
      off[e + 1] = static_cast<int32_t>(p);
    }
    Buf dx = up(xs, DType::f32), dw = up(W, wd), doff = up_raw(off), dy(s.P * ldy * 4);
    CK(hc::extra::expert_gemm(dx.as<float>(), ldx, wd, dw.p, doff.as<int32_t>(), s.E, dy.as<float>(), ldy, s.P, s.N,
                              s.K, nullptr));
    auto got = down(dy, s.P * ldy, DType::f32);
    std::vector<float> g2;
    std::vector<double> ref;
    for (int64_t e = 0; e < s.E; ++e)
      for (int64_t p = off[e]; p < off[e + 1]; ++p)
        for (int64_t n = 0; n < s.N; ++n) {
          double a = 0;
          for (int64_t k = 0; k < s.K; ++k) a += static_cast<double>(xs[p * ldx + k]) * W[(e * s.N + n) * s.K + k];
          ref.push_back(a);
          g2.push_back(got[p * ldy + n]);
        }
    char name[128];
    std::snprintf(name, sizeof name, "expert_gemm W=%s E=%ld P=%ld N=%ld K=%ld", dname(wd), (long)s.E, (long)s.P,
                  (long)s.N, (long)s.K);
    compare(name, DType::f32, g2, ref, 2e-5);  // fp32 activations and accumulation whatever W's dtype
  }
}

}  // namespace

void check_bf16_weights() {
  check_mixed_gemm();
  check_gemv();
  check_cast();
  for (DType wd : {DType::f32, DType::bf16}) {
    check_embedding(wd);
    check_expert_gemm(wd);
  }
}
