// Checks of the recurrent ops over state-slot pools: gated delta rule, Mamba2 SSM scan, causal conv1d. Varlen
// batches mixing decode rows (1 token), short sequences (< conv width), and ≥ 400-token prefills; a padding
// sequence (slot -1) whose outputs and state must stay untouched; slots in shuffled order.
#include "ops/cuda/recurrent.h"
#include "tests/cuda/check_util.h"

using namespace chk;
namespace hc = hylora::cuda;

namespace {
void check_gdn(DType d, int64_t Hk, int64_t Hv, int64_t Dk, int64_t Dv, const std::vector<int>& lens) {
  const int64_t S = lens.size(), slots = S + 2;
  std::vector<int32_t> cu, slot;
  make_varlen_batch(lens, slots, cu, slot);
  const int64_t T = cu[S];
  const int64_t ldq = Hk * Dk + 3, ldk = Hk * Dk + 1, ldv = Hv * Dv + 2, ldg = Hv + 1, ldb = Hv + 3, ldo = Hv * Dv + 5;
  auto q = randn(T * ldq, 1.0f, d), k = randn(T * ldk, 1.0f, d), v = randn(T * ldv, 1.0f, d);
  auto g = randu(T * ldg, -1.0f, -0.001f, d), beta = randu(T * ldb, 0.05f, 0.95f, d), o0 = randn(T * ldo, 1.0f, d);
  auto st0 = randn(slots * Hv * Dk * Dv, 0.1f, DType::f32);
  Buf dq = up(q, d), dk = up(k, d), dv = up(v, d), dg = up(g, d), db = up(beta, d), dout = up(o0, d),
      dst = up(st0, DType::f32), dcu = up_raw(cu), dslot = up_raw(slot);
  CK(hc::gated_delta_rule(d, dq.p, ldq, dk.p, ldk, dv.p, ldv, dg.p, ldg, db.p, ldb, dout.p, ldo, dst.as<float>(),
                          dslot.as<int32_t>(), dcu.as<int32_t>(), S, T, Hk, Hv, Dk, Dv, nullptr, nullptr));
  auto og = down(dout, T * ldo, d);
  auto sg = down(dst, st0.size(), DType::f32);
  std::vector<double> sref(st0.begin(), st0.end());
  std::vector<float> og2, sg2;
  std::vector<double> oref, sref2;
  const bool untouched = padding_rows_untouched(og, o0, cu, slot, ldo);
  for (int64_t s = 0; s < S; ++s) {
    if (slot[s] < 0) continue;
    for (int64_t h = 0; h < Hv; ++h) {
      const int64_t kh = h / (Hv / Hk);
      double* Sm = sref.data() + (slot[s] * Hv + h) * Dk * Dv;
      std::vector<double> o(Dv);
      for (int64_t t = cu[s]; t < cu[s + 1]; ++t) {
        gated_delta_ref_token(&q[t * ldq + kh * Dk], &k[t * ldk + kh * Dk], &v[t * ldv + h * Dv], g[t * ldg + h],
                              beta[t * ldb + h], Dk, Dv, Sm, o.data());
        for (int64_t j = 0; j < Dv; ++j) {
          oref.push_back(o[j]);
          og2.push_back(og[t * ldo + h * Dv + j]);
        }
      }
    }
  }
  for (size_t i = 0; i < sref.size(); ++i) {
    sref2.push_back(sref[i]);
    sg2.push_back(sg[i]);
  }
  char name[160];
  std::snprintf(name, sizeof name, "gated_delta S=%ld T=%ld Hk=%ld Hv=%ld Dk=%ld Dv=%ld", (long)S, (long)T, (long)Hk,
                (long)Hv, (long)Dk, (long)Dv);
  compare(std::string(name) + " out", d, og2, oref, 5e-5, 1.6e-2);
  compare(std::string(name) + " state", d, sg2, sref2, 5e-5, 1e-3);
  expect(std::string(name) + " padding untouched", untouched);
}

double softplus20(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }

void check_ssm(DType d, int64_t nh, int64_t hd, int64_t G, int64_t N, const std::vector<int>& lens) {
  const int64_t S = lens.size(), slots = S + 1;
  std::vector<int32_t> cu, slot;
  make_varlen_batch(lens, slots, cu, slot);
  const int64_t T = cu[S];
  const int64_t ldx = nh * hd + 3, lddt = nh + 1, ldB = 2 * G * N + 5, ldC = ldB, ldy = nh * hd + 1;
  auto x = randn(T * ldx, 1.0f, d), dt = randn(T * lddt, 1.0f, d), BC = randn(T * ldB, 1.0f, d),
       y0 = randn(T * ldy, 1.0f, d);
  auto A = randu(nh, -4.0f, -0.5f, DType::f32), D = randn(nh, 1.0f, DType::f32), dtb = randn(nh, 0.5f, DType::f32);
  const float dt_min = 0.001f;
  auto st0 = randn(slots * nh * hd * N, 0.2f, DType::f32);
  Buf dx = up(x, d), ddt = up(dt, d), dBC = up(BC, d), dy = up(y0, d), dA = up(A, DType::f32), dD = up(D, DType::f32),
      ddtb = up(dtb, DType::f32), dst = up(st0, DType::f32), dcu = up_raw(cu), dslot = up_raw(slot);
  const size_t es = hc::dtype_size(d);
  const void* Bp = dBC.p;
  const void* Cp = static_cast<const char*>(dBC.p) + G * N * es;  // C after B in the same row
  CK(hc::ssm_scan(d, dx.p, ldx, ddt.p, lddt, Bp, ldB, Cp, ldC, dA.as<float>(), dD.as<float>(), ddtb.as<float>(), dt_min,
                  dy.p, ldy, dst.as<float>(), dslot.as<int32_t>(), dcu.as<int32_t>(), S, T, nh, hd, G, N, nullptr));
  auto yg = down(dy, T * ldy, d);
  auto sg = down(dst, st0.size(), DType::f32);
  std::vector<double> sref(st0.begin(), st0.end());
  std::vector<float> yg2;
  std::vector<double> yref;
  const bool untouched = padding_rows_untouched(yg, y0, cu, slot, ldy);
  for (int64_t s = 0; s < S; ++s) {
    if (slot[s] < 0) continue;
    for (int64_t h = 0; h < nh; ++h) {
      const int64_t gi = h / (nh / G);
      double* Sm = sref.data() + (slot[s] * nh + h) * hd * N;
      for (int64_t t = cu[s]; t < cu[s + 1]; ++t) {
        const double delta = std::max(softplus20((double)dt[t * lddt + h] + dtb[h]), (double)dt_min);
        const double dec = std::exp(delta * A[h]);
        for (int64_t p = 0; p < hd; ++p) {
          const double dx = delta * x[t * ldx + h * hd + p];
          double acc = 0;
          for (int64_t n = 0; n < N; ++n) {
            Sm[p * N + n] = dec * Sm[p * N + n] + dx * BC[t * ldB + gi * N + n];
            acc += Sm[p * N + n] * BC[t * ldB + G * N + gi * N + n];
          }
          yref.push_back(acc + (double)D[h] * x[t * ldx + h * hd + p]);
          yg2.push_back(yg[t * ldy + h * hd + p]);
        }
      }
    }
  }
  char name[160];
  std::snprintf(name, sizeof name, "ssm_scan S=%ld T=%ld nh=%ld hd=%ld G=%ld N=%ld", (long)S, (long)T, (long)nh,
                (long)hd, (long)G, (long)N);
  compare(std::string(name) + " y", d, yg2, yref, 5e-5, 1.6e-2);
  compare(std::string(name) + " state", d, sg, sref, 5e-5, 1e-3);
  expect(std::string(name) + " padding untouched", untouched);
}

void check_conv(DType d, int64_t C, int64_t K, bool bias, bool silu_on, const std::vector<int>& lens) {
  const int64_t S = lens.size(), slots = S + 3;
  std::vector<int32_t> cu, slot;
  make_varlen_batch(lens, slots, cu, slot);
  const int64_t T = cu[S];
  const int64_t ldx = C + 7, ldy = C + 2;
  auto x = randn(T * ldx, 1.0f, d), w = randn(C * K, 0.5f, d), b = randn(C, 0.5f, d), y0 = randn(T * ldy, 1.0f, d);
  auto st0 = randn(slots * C * (K - 1), 1.0f, DType::f32);
  Buf dx = up(x, d), dw = up(w, d), db = up(b, d), dy = up(y0, d), dst = up(st0, DType::f32), dcu = up_raw(cu),
      dslot = up_raw(slot);
  CK(hc::causal_conv1d(d, dx.p, ldx, dw.p, bias ? db.p : nullptr, dy.p, ldy, dst.as<float>(), dslot.as<int32_t>(),
                       dcu.as<int32_t>(), S, T, C, K, silu_on, nullptr));
  auto yg = down(dy, T * ldy, d);
  auto sg = down(dst, st0.size(), DType::f32);
  std::vector<double> sref(st0.begin(), st0.end());
  std::vector<float> yg2;
  std::vector<double> yref;
  const bool untouched = padding_rows_untouched(yg, y0, cu, slot, ldy);
  for (int64_t s = 0; s < S; ++s) {
    const int64_t n = lens[s];
    if (slot[s] < 0) continue;
    for (int64_t c = 0; c < C; ++c) {
      double* st = sref.data() + (slot[s] * C + c) * (K - 1);
      std::vector<double> u(K - 1 + n);
      for (int64_t j = 0; j < K - 1; ++j) u[j] = st[j];
      for (int64_t i = 0; i < n; ++i) u[K - 1 + i] = x[(cu[s] + i) * ldx + c];
      for (int64_t i = 0; i < n; ++i) {
        double a = bias ? b[c] : 0.0;
        for (int64_t j = 0; j < K; ++j) a += (double)w[c * K + j] * u[i + j];
        yref.push_back(silu_on ? silu(a) : a);
        yg2.push_back(yg[(cu[s] + i) * ldy + c]);
      }
      for (int64_t j = 0; j < K - 1; ++j) st[j] = u[n + j];
    }
  }
  char name[160];
  std::snprintf(name, sizeof name, "causal_conv1d S=%ld T=%ld C=%ld K=%ld bias=%d silu=%d", (long)S, (long)T, (long)C,
                (long)K, bias, silu_on);
  compare(std::string(name) + " y", d, yg2, yref, 1e-5, 1e-2);
  compare(std::string(name) + " state", d, sg, sref, 0.0, 0.0);
  expect(std::string(name) + " padding untouched", untouched);
}
}  // namespace

void check_recurrent() {
  for (DType d : {DType::f32, DType::bf16}) {
    if (g_small) {
      check_gdn(d, 1, 2, 64, 40, {1, 20, 3});
      check_gdn(d, 1, 2, 64, 40, {1, 1, 2});  // decode kernel
      check_gdn(d, 1, 2, 32, 42, {1, 2, 1});  // decode kernel, scalar state path
      check_ssm(d, 4, 40, 2, 32, {1, 20, 3});
      check_conv(d, 70, 4, true, true, {1, 2, 9, 3});
      continue;
    }
    check_gdn(d, 2, 4, 128, 128, {1, 70, 9, 450, 17});
    check_gdn(d, 1, 3, 64, 96, {33, 1, 1, 401});
    check_gdn(d, 4, 4, 256, 32, {1, 1, 1, 1, 1, 1, 1});
    // decode kernel (Dk ≤ 128, T ≤ 4·S): make_batch pads sequence S/2, so {1, 1} is batch 1 plus a padding row
    check_gdn(d, 2, 4, 128, 128, {1, 1, 2, 1, 1, 1});
    check_gdn(d, 16, 32, 128, 128, {1, 1});             // Qwen3.5-4B heads, batch 1
    check_gdn(d, 2, 4, 64, 64, {1, 1, 1, 1});           // batch 3 (+ pad)
    check_gdn(d, 2, 8, 128, 128, std::vector<int>(65, 1));  // batch 64 (+ pad)
    {
      std::vector<int> ragged(66);                      // batch 65 ragged (1..4 rows; T ≤ 4·S keeps the decode path)
      for (auto& l : ragged) l = randint(1, 4);
      check_gdn(d, 4, 4, 64, 64, ragged);
    }
    check_gdn(d, 1, 2, 96, 42, {1, 3, 1, 2});           // Dv % 4 != 0: scalar state path
    check_gdn(d, 1, 2, 32, 40, {1, 1, 1});              // partial column quads in the last tile
    check_gdn(d, 2, 2, 16, 20, {2, 1, 1});              // Dk < 16 row groups, Dv % 4 == 0
    check_gdn(d, 1, 1, 128, 128, {4, 4, 4, 4});         // 4 tokens per sequence on the decode path
    check_ssm(d, 8, 64, 2, 128, {1, 450, 5, 17});
    check_ssm(d, 6, 40, 3, 64, {1, 1, 1, 1, 410});
    check_conv(d, 300, 4, true, true, {1, 2, 3, 50, 400, 7});
    check_conv(d, 1000, 4, false, false, {1, 1, 1, 1, 1});
    check_conv(d, 64, 2, true, false, {5, 1, 420});
    check_conv(d, 8192, 4, true, true, {1, 1});         // decode batch 1 (+ pad), Qwen3.5-4B conv channels
    check_conv(d, 8192, 4, false, true, std::vector<int>(65, 1));  // decode batch 64 (+ pad)
    check_conv(d, 1000, 4, true, false, {1, 3, 1, 2, 1});  // C not a multiple of the 128-channel block
  }
}
